"""Prompt text shared by the LLM backends.

Findings and measurements are given to the model as facts so that it grounds
its answer in what perception measured rather than guessing from pixels. No
patient identifiers ever go in: only frame-level facts.
"""

from __future__ import annotations

from typing import Any

from perception.findings import FrameFindings
from perception.vlm.base import AskRequest, ReportContext
from perception.vlm.geometry import describe_finding
from perception.vlm.measurement_text import format_measurement_value as format_measurement_value
from perception.vlm.measurement_text import measurement_line
from perception.vlm.measurements import NO_MEASUREMENTS, Measurements

SYSTEM_PROMPT = (
    "You assist clinicians watching a live surgical or telemedicine video. "
    "You describe what is visible and what the detection model reported. "
    "You draft; you do not diagnose, prescribe or identify anyone: a clinician reviews and signs everything. "
    "Use the listed detections and measurements as facts; never invent a measurement that is not listed. "
    "If the facts do not answer the question, say so plainly. Answer briefly."
)

REPORT_INSTRUCTIONS = (
    "Draft a short report for a clinician to review and sign, using only the facts below. "
    "Use exactly these headings, each on its own line followed by its text:\n"
    "Findings:\nImpression:\nFollow-up:\nUncertainty:\n"
    "Do not state a diagnosis as certain; flag anything that needs clinical confirmation."
)


def findings_facts(findings: FrameFindings | None) -> list[str]:
    """Detections as fact lines, or a line saying there are none / none were given."""
    if findings is None:
        return ["No detection results are available for this frame."]
    w, h = findings.frame_size
    head = f"Detection model {findings.model.name} {findings.model.version} on a {w}x{h} frame"
    if findings.withheld and findings.content is not None:  # withheld means the gate judged: content is set
        return [
            f"{head}: the frame does not look like {findings.content.content}, the content this model knows; "
            "it made no statement about this frame (neither presence nor absence of anything)."
        ]
    if not findings.objects:
        return [f"{head}: nothing detected."]
    lines = [f"{head}: {len(findings.objects)} object(s)."]
    lines += [f"- {describe_finding(f, findings)}" for f in findings.objects]
    return lines


def measurement_facts(measurements: Measurements) -> list[str]:
    facts = measurements.facts()
    if not facts:
        return []
    return ["Measurements:"] + [f"- {measurement_line(k, v)}" for k, v in facts.items()]


def facts_text(findings: FrameFindings | None, measurements: Measurements = NO_MEASUREMENTS) -> str:
    return "\n".join(findings_facts(findings) + measurement_facts(measurements))


def build_messages(request: AskRequest, *, with_image: bool) -> list[dict[str, Any]]:
    """Chat messages in the OpenAI/transformers "content parts" shape.

    The image part is a placeholder ``{"type": "image"}``; each backend swaps in
    what its transport needs (a data URL, or the pixel array for a processor).
    """
    messages: list[dict[str, Any]] = [{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]}]
    for turn in request.history:
        messages.append({"role": "user", "content": [{"type": "text", "text": turn.question}]})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.answer}]})
    content: list[dict[str, Any]] = []
    if with_image:
        content.append({"type": "image"})
    content.append(
        {
            "type": "text",
            "text": f"Facts:\n{facts_text(request.findings, request.measurements)}\n\nQuestion: {request.question}",
        }
    )
    messages.append({"role": "user", "content": content})
    return messages


def build_report_messages(context: ReportContext, *, with_image: bool) -> list[dict[str, Any]]:
    facts = [facts_text(f) for f in context.findings] or ["No detection results are available."]
    meas = measurement_facts(context.measurements)
    text = REPORT_INSTRUCTIONS + "\n\nFacts:\n" + "\n".join(facts + meas)
    if context.notes.strip():
        text += f"\n\nClinician notes: {context.notes.strip()}"
    content: list[dict[str, Any]] = [{"type": "image"}] if with_image else []
    content.append({"type": "text", "text": text})
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": content},
    ]
