"""Sealing a report version as it is signed: render its PDF, PAdES-sign it with the clinic's key, store the bytes.

Runs inside the store's signing transaction (store.reports.sign's `seal`), on the request's worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import tzinfo

from telehealth.pdf_export import report_pdf
from telehealth.report_page import ReportPage
from telehealth.report_signing import sign_report_pdf
from telehealth.signed_pdf_files import SignedPdfFiles
from telehealth.signing_key import ClinicSigningKey
from telehealth.store.reports import ReportVersionRecord, ReportView, clinic_time
from telehealth.store.signed_pdfs import ReplacedVersion, SealedPdf, SignedPdfRecord


@dataclass(frozen=True)
class ReportSealer:
    key: ClinicSigningKey
    files: SignedPdfFiles
    zone: tzinfo

    def seal(
        self,
        view: ReportView,
        signed: ReportVersionRecord,
        replaces: ReplacedVersion | None,
        page: ReportPage,
        signer: str,
    ) -> SealedPdf:
        """The signed PDF of `signed` (the version as it is being signed), stored; what the row records."""
        if signed.signed_at is None:
            raise ValueError("only a version being signed is sealed")
        pdf = report_pdf(replace(view, current=signed), page, signer, self.zone, replaces=replaces)
        reason = f"Wound assessment report {view.report_id}, version {signed.version}, signed by {signer}"
        if replaces is not None:
            reason += f"; replaces version {replaces.version}"
        sealed = sign_report_pdf(pdf, self.key, signer, clinic_time(signed.signed_at, self.zone), reason)
        stored = self.files.put(sealed)
        return SealedPdf(stored.name, stored.sha256, stored.byte_size, self.key.subject)

    def read(self, record: SignedPdfRecord) -> bytes:
        """Exactly the bytes stored when the version was signed (SignedPdfChanged if the file was altered)."""
        return self.files.read(record.file_name)
