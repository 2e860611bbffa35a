"""Similar cases: image embeddings of every stored photo, a vector index over them, and the retrieval a GP asks for
("which earlier wounds looked like this one, and how did they heal?")."""
