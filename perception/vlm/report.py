"""Report drafts: what the AI proposes and a clinician edits and signs.

A draft is never a final report: `status` is always "ai_draft" and
`requires_signature` is always True, enforced by the type so no code path can
produce an unsigned "final" from here. Signing happens outside perception.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from perception.vlm.info import VlmInfo
from perception.vlm.measurement_text import measurement_line

DRAFT_HEADER = "AI DRAFT — must be reviewed and signed by a clinician"


class ReportDraft(BaseModel):
    model_config = ConfigDict(frozen=True)

    findings: list[str]
    measurements: dict[str, Any] = Field(default_factory=dict)
    impression: str
    follow_up: str
    uncertainty: str
    model_name: str
    model_version: str
    backend: str
    evidence_frames: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    status: Literal["ai_draft"] = "ai_draft"
    requires_signature: Literal[True] = True

    @classmethod
    def from_sections(
        cls,
        sections: dict[str, str],
        *,
        info: VlmInfo,
        measurements: dict[str, Any],
        evidence_frames: list[str],
        fallback_findings: list[str],
    ) -> ReportDraft:
        """A draft from parsed LLM sections; missing sections are said to be missing, not invented."""
        findings_text = sections.get("findings", "").strip()
        findings = [ln.lstrip("-*• ").strip() for ln in findings_text.splitlines() if ln.strip()] or fallback_findings
        return cls(
            findings=findings,
            measurements=measurements,
            impression=sections.get("impression", "").strip() or "(the model gave no impression)",
            follow_up=sections.get("follow_up", "").strip() or "(the model gave no follow-up suggestion)",
            uncertainty=sections.get("uncertainty", "").strip()
            or "The model did not state its uncertainty; treat every statement as unverified.",
            model_name=info.name,
            model_version=info.version,
            backend=info.backend,
            evidence_frames=evidence_frames,
        )


_SECTION_ALIASES = {
    "findings": "findings",
    "finding": "findings",
    "observations": "findings",
    "impression": "impression",
    "assessment": "impression",
    "summary": "impression",
    "follow-up": "follow_up",
    "follow up": "follow_up",
    "followup": "follow_up",
    "suggested follow-up": "follow_up",
    "recommendation": "follow_up",
    "recommendations": "follow_up",
    "next steps": "follow_up",
    "uncertainty": "uncertainty",
    "limitations": "uncertainty",
    "confidence": "uncertainty",
}
# A heading: optional markdown (#, **), a known name, a colon; text may follow on the same line.
_HEADING = re.compile(
    r"^\s*(?:#+\s*)?(?:\*\*)?\s*("
    + "|".join(re.escape(k) for k in sorted(_SECTION_ALIASES, key=len, reverse=True))
    + r")\s*(?:\*\*)?\s*:?\s*(?:\*\*)?\s*(.*)$",
    re.IGNORECASE,
)


def parse_sections(text: str) -> dict[str, str]:
    """Split free LLM text into findings/impression/follow_up/uncertainty.

    Models follow heading instructions loosely (markdown, synonyms, text on the
    heading line), so headings are matched leniently. Text before any heading
    counts as the impression: a model that ignores the format still yields
    something the clinician can edit.
    """
    sections: dict[str, list[str]] = {}
    current = "impression"
    for line in text.splitlines():
        m = _HEADING.match(line)
        # Require a colon or a markdown heading so a sentence starting with
        # "Summary of..." is not mistaken for a heading.
        if m and (":" in line or line.lstrip().startswith(("#", "**"))):
            current = _SECTION_ALIASES[m.group(1).lower()]
            rest = m.group(2).strip().strip("*").strip()
            sections.setdefault(current, [])
            if rest:
                sections[current].append(rest)
            continue
        sections.setdefault(current, []).append(line)
    return {k: "\n".join(v).strip() for k, v in sections.items() if "\n".join(v).strip()}


def render_text(draft: ReportDraft) -> str:
    """The draft as plain text with the unmistakable AI-draft header."""
    lines = [DRAFT_HEADER, ""]
    lines.append("Findings:")
    lines += [f"  - {f}" for f in draft.findings] or ["  (none)"]
    if draft.measurements:
        lines.append("Measurements:")
        lines += [f"  - {measurement_line(k, v)}" for k, v in draft.measurements.items()]
    lines += ["", "Impression:", f"  {draft.impression}", "", "Suggested follow-up:", f"  {draft.follow_up}"]
    lines += ["", "Uncertainty:", f"  {draft.uncertainty}", ""]
    if draft.evidence_frames:
        lines.append("Evidence frames: " + ", ".join(draft.evidence_frames))
    lines.append(
        f"Drafted by: {draft.model_name} {draft.model_version} ({draft.backend}) on "
        f"{draft.created_at.astimezone(timezone.utc).strftime('%d %b %Y %H:%M UTC')}"
    )
    lines.append(f"Status: {draft.status} — signature required")
    return "\n".join(lines) + "\n"


def draft_from_llm_text(text: str, context: Any, info: VlmInfo) -> ReportDraft:
    """A `ReportDraft` from an LLM's free-text draft for `context` (a ReportContext).

    Measurements and evidence frames are copied from the context, never from
    the model's text, so a model cannot alter the numbers the clinician signs.
    """
    from perception.vlm.clinical_words import finding_sentence

    fallback = [finding_sentence(f, ff) for ff in context.findings for f in ff.objects] or ["No objects detected."]
    return ReportDraft.from_sections(
        parse_sections(text),
        info=info,
        measurements=context.measurements.facts(),
        evidence_frames=list(context.evidence_frames),
        fallback_findings=fallback,
    )
