"""Recording a stream's annotated video and its findings, with consent that the composition root checks."""
