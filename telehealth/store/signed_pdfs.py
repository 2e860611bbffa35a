"""The signed PDF of each signed report version: recorded in the signing transaction, read back for the PDF and FHIR
exports. Callers check the caller may see the version (view_report) before asking for its PDF."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from telehealth.records import as_utc, utc_now
from telehealth.store.cases import CaseStore
from telehealth.store.tables import ReportVersionRow, SignedReportPdfRow


@dataclass(frozen=True)
class ReplacedVersion:
    """The signed version an amendment replaces, as the amendment's PDF and FHIR document name it."""

    version_id: int
    version: int
    pdf_sha256: str | None  # None: it was signed before report PDFs were signed


@dataclass(frozen=True)
class SealedPdf:
    """What sealing a version wrote: the signed PDF's file and digest, and the certificate that signed it."""

    file_name: str
    sha256: str
    byte_size: int
    certificate_subject: str


@dataclass(frozen=True)
class SignedPdfRecord:
    version_id: int
    file_name: str
    sha256: str
    byte_size: int
    certificate_subject: str
    created_at: datetime


def _record(row: SignedReportPdfRow) -> SignedPdfRecord:
    return SignedPdfRecord(
        row.version_id, row.file_name, row.sha256, row.byte_size, row.certificate_subject, as_utc(row.created_at)
    )


def replaced_version(s: Session, row: ReportVersionRow) -> ReplacedVersion | None:
    if row.amends_version_id is None:
        return None
    amended = s.get(ReportVersionRow, row.amends_version_id)
    if amended is None:
        return None
    pdf = s.get(SignedReportPdfRow, amended.id)
    return ReplacedVersion(amended.id, amended.version, None if pdf is None else pdf.sha256)


def record_signed_pdf(s: Session, version_id: int, sealed: SealedPdf) -> SignedPdfRecord:
    row = SignedReportPdfRow(
        version_id=version_id,
        sha256=sealed.sha256,
        byte_size=sealed.byte_size,
        file_name=sealed.file_name,
        certificate_subject=sealed.certificate_subject[:512],
        created_at=utc_now(),
    )
    s.add(row)
    s.flush()
    return _record(row)


def signed_pdf(store: CaseStore, version_id: int) -> SignedPdfRecord | None:
    """The version's signed PDF; None for a draft or a version signed before PDFs were signed."""
    with store.db.session() as s:
        row = s.get(SignedReportPdfRow, version_id)
        return None if row is None else _record(row)


def replaced_by(store: CaseStore, version_id: int) -> ReplacedVersion | None:
    """The signed version that `version_id` amends, with its PDF's digest (None when it amends nothing)."""
    with store.db.session() as s:
        row = s.get(ReportVersionRow, version_id)
        return None if row is None else replaced_version(s, row)
