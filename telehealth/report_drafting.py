"""From a wound analysis to an AI report draft (measurements as facts) and to the stored report body."""

from __future__ import annotations

from typing import Any

from perception.findings import Finding, FrameFindings, ModelInfo
from perception.vlm import ReportContext, ReportDraft, VlmBackend, render_text
from telehealth.photo_analysis import AnalysisRecord

AI_DRAFT_NOTICE = "AI draft — requires clinician signature"
SECTION_NAMES = ("findings", "impression", "follow_up", "uncertainty")


def analysis_measurements(analysis: dict[str, Any]) -> dict[str, Any]:
    """The facts a draft may quote: only what was measured; a missing area says why instead of a number."""
    m = analysis.get("measurement") or {}
    out: dict[str, Any] = {}
    if m.get("area_cm2") is not None:
        out["wound_area_cm2"] = m["area_cm2"]
        out["wound_length_cm"] = m.get("length_cm")
        out["wound_width_cm"] = m.get("width_cm")
    else:
        out["wound_area"] = m.get("reason") or "not measured"
    tissue = analysis.get("tissue")
    if tissue:
        out["tissue_mix"] = {k: tissue[k] for k in ("granulation", "slough", "necrotic", "unclassified")}
    redness = analysis.get("redness") or {}
    if redness.get("index") is not None:
        out["periwound_redness_index"] = redness["index"]
    risk = analysis.get("risk") or {}
    signals = [s.get("description") or s.get("code") for s in risk.get("signals", [])]
    if signals:
        out["infection_signals"] = signals
    out["infection_risk_flag"] = "flagged for clinical review" if risk.get("flagged") else "no signal found"
    return {k: v for k, v in out.items() if v is not None}


def report_context(photo_id: int, record: AnalysisRecord) -> ReportContext:
    analysis = record.analysis or {}
    w, h = analysis.get("image_size") or (0, 0)
    box = record.result.get("wound_box")
    objects = () if not box else (Finding(label="wound", score=1.0, box=tuple(box), area_px=int(analysis.get("wound_pixels", 0))),)
    findings = FrameFindings(model=ModelInfo(record.model_name, record.model_version, labels=("wound",)),
                             frame_size=(int(w), int(h)), objects=objects)
    return ReportContext(findings=(findings,), measurements=analysis_measurements(analysis),
                         evidence_frames=(f"photo-{photo_id}/evidence.png",))


async def draft_for(backend: VlmBackend, photo_id: int, record: AnalysisRecord) -> ReportDraft:
    return await backend.draft_report(report_context(photo_id, record))


def sections_text(sections: dict[str, Any], measurements: dict[str, Any]) -> str:
    """Plain text of (possibly clinician-edited) sections; measurements are always the stored facts."""
    from perception.vlm.prompts import format_measurement_value

    lines = ["Findings:"] + [f"  - {f}" for f in sections.get("findings") or ["(none)"]]
    if measurements:
        lines.append("Measurements:")
        lines += [f"  - {k.replace('_', ' ')}: {format_measurement_value(v)}" for k, v in measurements.items()]
    lines += ["", "Impression:", f"  {sections.get('impression', '')}", "", "Suggested follow-up:",
              f"  {sections.get('follow_up', '')}", "", "Uncertainty:", f"  {sections.get('uncertainty', '')}"]
    return "\n".join(lines) + "\n"


def draft_body(draft: ReportDraft, photo_id: int, record: AnalysisRecord) -> dict[str, Any]:
    return {
        "notice": AI_DRAFT_NOTICE,
        "text": render_text(draft),
        "sections": {k: getattr(draft, k) for k in SECTION_NAMES},
        "measurements": dict(draft.measurements),
        "source": {"photo_id": photo_id, "analysis_id": record.id, "segmenter": f"{record.model_name} {record.model_version}",
                   "drafted_by": f"{draft.model_name} {draft.model_version} ({draft.backend})",
                   "drafted_at": draft.created_at.isoformat()},
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
