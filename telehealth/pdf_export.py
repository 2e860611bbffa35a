"""A report version as a PDF (fpdf2): text, measurements, evidence image, and who signed it when.

Blocking (layout, image decode): call from a worker thread.
"""

from __future__ import annotations

import io
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from fpdf import FPDF

from telehealth.records import ReportStatus
from telehealth.store.reports import ReportView, clinic_time
from telehealth.store.signed_pdfs import ReplacedVersion

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_LATIN1 = str.maketrans({"—": "-", "–": "-", "’": "'", "“": '"', "”": '"', "•": "-", "…": "..."})


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return ", ".join(
            f"{k} {100 * v:.0f}%" if isinstance(v, (int, float)) and 0 <= v <= 1 else f"{k} {_fmt(v)}"
            for k, v in value.items()
        )
    if isinstance(value, list):
        return "; ".join(_fmt(v) for v in value)
    return str(value)


def report_pdf(
    view: ReportView,
    evidence_png: bytes | None,
    signer: str | None,
    zone: tzinfo = UTC,
    replaces: ReplacedVersion | None = None,
) -> bytes:
    """The version's PDF, unsigned (telehealth/report_signing.py signs it). `replaces` names the signed version an
    amendment replaces, with its signed PDF's sha256, so the chain of versions can be checked from the paper."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    unicode_font = _DEJAVU.is_file()
    if unicode_font:
        pdf.add_font("DejaVu", "", str(_DEJAVU))
        family = "DejaVu"
    else:
        family = "Helvetica"

    def clean(text: str) -> str:
        return text if unicode_font else text.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")

    def line(text: str, size: float = 10, h: float = 5) -> None:
        pdf.set_font(family, size=size)
        pdf.multi_cell(0, h, clean(text), new_x="LMARGIN", new_y="NEXT")

    v = view.current
    signed = v.status is ReportStatus.signed
    # Also in the document information, where any PDF tool reads it without rendering the page.
    pdf.set_title(f"Wound assessment report {view.report_id}, version {v.version}")
    if replaces is not None:
        pdf.set_subject(f"Replaces version {replaces.version} (signed PDF sha256 {replaces.pdf_sha256 or 'none'})")
    line(f"Wound assessment report {view.report_id}, version {v.version}", 15, 8)
    if signed:
        when = clinic_time(v.signed_at, zone) if v.signed_at else "an unknown time"
        line(f"Signed by {signer or f'user {v.signed_by}'} on {when}", 10)
    else:
        line("AI DRAFT - NOT SIGNED: requires clinician signature", 12, 7)
    if replaces is not None:
        digest = replaces.pdf_sha256 or "none (signed before report PDFs were signed)"
        line(f"Amends and replaces version {replaces.version}; that version's signed PDF has sha256 {digest}", 9)
    elif v.amends_version_id is not None:
        line(f"Amends version id {v.amends_version_id}", 9)
    pdf.ln(3)
    line(str(v.body.get("text") or ""), 10)
    measurements = v.body.get("measurements") or {}
    if measurements:
        pdf.ln(2)
        line("Measurements (from the wound analysis)", 12, 7)
        for k, val in measurements.items():
            line(f"{k.replace('_', ' ')}: {_fmt(val)}", 10)
    if evidence_png is not None:
        pdf.ln(3)
        line("Evidence image", 12, 7)
        pdf.image(io.BytesIO(evidence_png), w=min(170, pdf.epw))
    return bytes(pdf.output())
