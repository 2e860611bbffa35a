"""A report version as a PDF (fpdf2), laid out as a clinician reads it: page one has the patient's identity, the
visit and the wound, the measurements beside the previous visit with the change, the evidence image, the tissue mix,
the risk signals with their reasons, and the clinician's findings and plan; then the signature line.

Blocking (layout, image decode): call from a worker thread. The bottom margin stays empty: the PAdES signature's
visible box goes there (report_signing.SIGNATURE_BOX).
"""

from __future__ import annotations

import io
from datetime import UTC, date, tzinfo
from pathlib import Path

from fpdf import FPDF
from PIL import Image

from telehealth.records import IdentifierKind, ReportStatus
from telehealth.report_page import ReportPage, VisitSize
from telehealth.store.reports import ReportView, clinic_time
from telehealth.store.signed_pdfs import ReplacedVersion

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_DEJAVU_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
_LATIN1 = str.maketrans({"—": "-", "–": "-", "’": "'", "“": '"', "”": '"', "•": "-", "…": "...", "²": "2"})
_BOTTOM_MARGIN_MM = 22  # keeps the signature box (15 mm) and a gap free
_EVIDENCE_MAX_H_MM = 72  # the image fits on page one beside everything else
_IDENTIFIER_NAMES = {IdentifierKind.mrn: "MRN", IdentifierKind.nhs_number: "NHS number"}


def _day(value: date | None) -> str:
    return "not recorded" if value is None else f"{value.day} {value:%B %Y}"


def _size(value: float | None, unit: str) -> str:
    return "not measured" if value is None else f"{value:.1f} {unit}"


def _change(pct: float | None) -> str:
    return "" if pct is None else f"{pct:+.0f}%"


class _Page:
    """fpdf2 with the report's fonts and a few layout helpers."""

    def __init__(self) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_auto_page_break(True, margin=_BOTTOM_MARGIN_MM)
        self.pdf.add_page()
        self.unicode = _DEJAVU.is_file()
        if self.unicode:
            self.pdf.add_font("DejaVu", "", str(_DEJAVU))
            self.pdf.add_font("DejaVu", "B", str(_DEJAVU_BOLD if _DEJAVU_BOLD.is_file() else _DEJAVU))
        self.family = "DejaVu" if self.unicode else "Helvetica"

    def clean(self, text: str) -> str:
        return text if self.unicode else text.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")

    def line(self, text: str, size: float = 10, h: float = 5, bold: bool = False) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size=size)
        self.pdf.multi_cell(0, h, self.clean(text), new_x="LMARGIN", new_y="NEXT")

    def heading(self, text: str) -> None:
        self.pdf.ln(2)
        self.line(text, 11.5, 6.5, bold=True)

    def row(self, cells: list[str], widths: list[float], bold: bool = False, h: float = 6) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size=9.5)
        for text, width in zip(cells, widths, strict=True):
            self.pdf.cell(width, h, self.clean(text), border=1)
        self.pdf.ln(h)

    def pairs(self, items: list[tuple[str, str]]) -> None:
        """Label/value pairs two to a row: the identity block at the top of page one."""
        half = self.pdf.epw / 2
        for i in range(0, len(items), 2):
            for label, value in items[i : i + 2]:
                self.pdf.set_font(self.family, "B", size=9.5)
                self.pdf.cell(30, 6, self.clean(label))
                self.pdf.set_font(self.family, "", size=9.5)
                self.pdf.cell(half - 30, 6, self.clean(value))
            self.pdf.ln(6)


def _identity(page: _Page, report: ReportPage) -> None:
    who = report.patient
    identifier = (
        f"{_IDENTIFIER_NAMES[who.identifier_kind]} {who.identifier_value}"
        if who.identifier_kind is not None and who.identifier_value
        else "not recorded"
    )
    wound = report.site or "site not recorded"
    if report.wound_type is not None:
        wound += f", {report.wound_type.display}"
    page.pairs(
        [
            ("Patient", who.full_name or "name not recorded"),
            ("Date of birth", _day(who.birth_date)),
            ("Identifier", identifier),
            ("Visit date", _day(None if report.visit is None else report.visit.day)),
            ("Wound", wound),
        ]
    )


def _measurements(page: _Page, report: ReportPage) -> None:
    page.heading("Measurements")
    visit, previous = report.visit, report.previous
    if visit is None:
        page.line("No analysed photo: nothing was measured.")
        return
    widths = [30.0, 52.0, 62.0, 24.0]
    page.row(["", "This visit", "Previous visit", "Change"], widths, bold=True)
    page.row(["", _day(visit.day), _day(previous.day) if previous else "none measured", ""], widths)

    def before(p: VisitSize | None, field: str, unit: str) -> str:
        return "no earlier measured visit" if p is None else _size(getattr(p, field), unit)

    for label, field, unit in (("Area", "area_cm2", "cm²"), ("Length", "length_cm", "cm"), ("Width", "width_cm", "cm")):
        page.row(
            [
                label,
                _size(getattr(visit, field), unit),
                before(previous, field, unit),
                _change(report.change_pct(field)),
            ],
            widths,
        )
    if visit.area_cm2 is None and visit.reason:
        page.line(f"Not measured: {visit.reason.removeprefix('not measured: ')}.", 9)
    page.line(
        "Measured by software from the photograph with the printed scale marker; reviewed by the signing clinician.", 8
    )


def _evidence(page: _Page, png: bytes | None) -> None:
    page.heading("Evidence image")
    if png is None:
        page.line("No evidence image (the photo was not analysed, or its analysis kept none).", 9)
        return
    with Image.open(io.BytesIO(png)) as image:
        width_px, height_px = image.size
    width_mm = min(page.pdf.epw, _EVIDENCE_MAX_H_MM * width_px / height_px)
    page.pdf.image(io.BytesIO(png), w=width_mm)
    page.line("The wound outline the model found, the scale marker and the measurements, drawn on the photo.", 8)


def _tissue_and_risk(page: _Page, report: ReportPage) -> None:
    page.heading("Tissue and risk signals")
    t = report.tissue
    if t is not None:
        page.line(
            f"Tissue mix: granulation {100 * t.granulation:.0f}%, slough {100 * t.slough:.0f}%, "
            f"necrotic {100 * t.necrotic:.0f}%, unclassified {100 * t.unclassified:.0f}%."
        )
    else:
        page.line(f"Tissue mix: {report.tissue_not_assessed or 'not assessed'}.")
    risk = report.risk
    if risk is None:
        page.line("Risk signals: not evaluated.")
        return
    if not risk.signals:
        page.line("Risk signals: none found in the photo.")
    for signal in risk.signals:
        page.line(f"- {signal.description}")
    if risk.not_evaluated:
        page.line(f"Not evaluated: {'; '.join(risk.not_evaluated)}.", 9)


def report_pdf(
    view: ReportView,
    report: ReportPage,
    signer: str | None,
    zone: tzinfo = UTC,
    replaces: ReplacedVersion | None = None,
) -> bytes:
    """The version's PDF, unsigned (telehealth/report_signing.py signs it). `replaces` names the signed version an
    amendment replaces, with its signed PDF's sha256, so the chain of versions can be checked from the paper."""
    page = _Page()
    pdf = page.pdf
    v = view.current
    signed = v.status is ReportStatus.signed
    # Also in the document information, where any PDF tool reads it without rendering the page.
    pdf.set_title(f"Wound assessment report {view.report_id}, version {v.version}")
    if replaces is not None:
        pdf.set_subject(f"Replaces version {replaces.version} (signed PDF sha256 {replaces.pdf_sha256 or 'none'})")
    page.line("Wound assessment report", 16, 8, bold=True)
    if signed:
        when = clinic_time(v.signed_at, zone) if v.signed_at else "an unknown time"
        page.line(f"AI-assisted draft, reviewed and signed by {signer or f'user {v.signed_by}'} on {when}", 9.5)
    else:
        page.line("AI DRAFT - NOT SIGNED: requires clinician signature", 11, 6, bold=True)
    page.line(f"Report {view.report_id}, version {v.version}", 8)
    if replaces is not None:
        digest = replaces.pdf_sha256 or "none (signed before report PDFs were signed)"
        page.line(f"Amends and replaces version {replaces.version}; that version's signed PDF has sha256 {digest}", 8)
    elif v.amends_version_id is not None:
        page.line(f"Amends version id {v.amends_version_id}", 8)
    pdf.ln(2)
    _identity(page, report)
    _measurements(page, report)
    _evidence(page, report.evidence_png)
    _tissue_and_risk(page, report)
    page.heading("Clinician's findings and plan")
    page.line(str(v.body.get("text") or ""), 9.5)
    return bytes(pdf.output())
