"""From a wound analysis to an AI report draft (measurements as facts) and to the stored report body."""

from __future__ import annotations

from typing import Any

from perception.findings import Finding, FrameFindings, ModelInfo
from perception.vlm import Measurements, ReportContext, ReportDraft, TissueMix, VlmBackend, render_text
from telehealth.store.analyses import AnalysisRecord
from telehealth.wound.models import WoundAssessment

AI_DRAFT_NOTICE = "AI draft — requires clinician signature"
SECTION_NAMES = ("findings", "impression", "follow_up", "uncertainty")


def analysis_measurements(assessment: WoundAssessment) -> Measurements:
    """The facts a draft may quote: only what was measured; a missing size says why instead of a number."""
    m, tissue, redness = assessment.measurement, assessment.tissue, assessment.redness
    return Measurements(
        subject="wound",
        area_cm2=m.area_cm2,
        length_cm=m.length_cm if m.area_cm2 is not None else None,
        width_cm=m.width_cm if m.area_cm2 is not None else None,
        size_not_measured=None if m.area_cm2 is not None else (m.reason or "not measured"),
        tissue_mix=None
        if tissue is None
        else TissueMix(tissue.granulation, tissue.slough, tissue.necrotic, tissue.unclassified),
        redness_index=None if redness is None else redness.index,
        infection_signals=tuple(signal.description or signal.code for signal in assessment.risk.signals),
        infection_flagged=assessment.risk.flagged,
    )


def report_context(photo_id: int, record: AnalysisRecord) -> ReportContext:
    """The draft's input: the wound as the segmenter found it (its box and its own score) and the measured facts."""
    assessment = record.assessment
    if assessment is None:
        raise ValueError(f"photo {photo_id} was not analysed: {record.stored.reason}")
    w, h = assessment.image_size
    objects: tuple[Finding, ...] = ()
    if assessment.wound_box is not None:
        score = assessment.wound_score
        # Analyses stored before the score was kept (schema 1) came from the shipped model's found regions.
        objects = (
            Finding(
                label="wound",
                score=1.0 if score is None else score,
                box=assessment.wound_box,
                area_px=assessment.wound_pixels,
            ),
        )
    findings = FrameFindings(
        model=ModelInfo(assessment.model.name, assessment.model.version, labels=("wound",)),
        frame_size=(w, h),
        objects=objects,
    )
    return ReportContext(
        findings=(findings,),
        measurements=analysis_measurements(assessment),
        evidence_frames=(f"photo-{photo_id}/evidence.png",),
    )


async def draft_for(backend: VlmBackend, photo_id: int, record: AnalysisRecord) -> ReportDraft:
    return await backend.draft_report(report_context(photo_id, record))


def sections_text(sections: dict[str, Any], measurements: dict[str, Any]) -> str:
    """Plain text of (possibly clinician-edited) sections; measurements are always the stored facts."""
    from perception.vlm.measurement_text import measurement_line

    lines = ["Findings:"] + [f"  - {f}" for f in sections.get("findings") or ["(none)"]]
    if measurements:
        lines.append("Measurements:")
        lines += [f"  - {measurement_line(k, v)}" for k, v in measurements.items()]
    lines += [
        "",
        "Impression:",
        f"  {sections.get('impression', '')}",
        "",
        "Suggested follow-up:",
        f"  {sections.get('follow_up', '')}",
        "",
        "Uncertainty:",
        f"  {sections.get('uncertainty', '')}",
    ]
    return "\n".join(lines) + "\n"


def draft_body(draft: ReportDraft, photo_id: int, record: AnalysisRecord) -> dict[str, Any]:
    return {
        "notice": AI_DRAFT_NOTICE,
        "text": render_text(draft),
        "sections": {k: getattr(draft, k) for k in SECTION_NAMES},
        "measurements": dict(draft.measurements),
        "source": {
            "photo_id": photo_id,
            "analysis_id": record.id,
            "segmenter": f"{record.model_name} {record.model_version}",
            "drafted_by": f"{draft.model_name} {draft.model_version} ({draft.backend})",
            "drafted_at": draft.created_at.isoformat(),
        },
    }


def edited_body(old: dict[str, Any], text: str | None, sections: dict[str, Any] | None) -> dict[str, Any]:
    """A clinician's edit: text and sections change; measurements and source never do."""
    body = dict(old)
    if sections is not None:
        merged = dict(old.get("sections") or {})
        merged.update({k: v for k, v in sections.items() if v is not None})
        body["sections"] = merged
        if text is None:
            body["text"] = sections_text(merged, old.get("measurements") or {})
    if text is not None:
        body["text"] = text
    body["edited"] = True
    return body
