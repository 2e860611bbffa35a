"""The telehealth services one server shares: store, sign-in, analysis worker, DICOM outbox, decode slots,
first-run token, the report sealer (signing key and signed PDFs), and similar-case retrieval."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from telehealth.analysis_worker import AnalysisRunner
from telehealth.auth import Authenticator
from telehealth.consult_api import JoinAuthorizer, join_authorizer
from telehealth.decode_slots import DecodeSlots
from telehealth.dicom.outbox import DicomOutbox
from telehealth.evidence_files import EvidenceFiles
from telehealth.first_run import SETUP_PATH, FirstRunSetup
from telehealth.report_sealing import ReportSealer
from telehealth.settings import TelehealthSettings
from telehealth.similar.retrieval import SimilarCases
from telehealth.store.cases import CaseStore
from telehealth.store.reconcile import ReconcileReport


@dataclass
class TelehealthServices:
    """Everything telehealth runs on, built by the composition root (scopecast.app.build_telehealth), which mounts
    the routers over these and awaits close()."""

    settings: TelehealthSettings
    store: CaseStore
    auth: Authenticator
    reconciled: ReconcileReport
    analyses: AnalysisRunner
    decodes: DecodeSlots  # shared by the upload and the consult-capture routes
    first_run: FirstRunSetup
    evidence: EvidenceFiles
    sealer: ReportSealer  # the clinic's signing key and the signed report PDFs
    dicom: DicomOutbox  # delivers to the PACS only when SCOPECAST_DICOMWEB_URL is set
    similar: SimilarCases  # embeddings, the vector index and retrieval; the lifespan calls similar.runner.start()

    def first_run_link(self, base_url: str | None = None) -> str | None:
        """The one-time setup link `{public_base_url}/setup#token=...` while no account exists, else None.

        Each call makes a new token and voids the previous link, so print the newest. `base_url` (e.g.
        "http://127.0.0.1:8080") stands in for an unset public_base_url; without either the link is the bare path.
        The token rides in the fragment, which browsers never send, so it stays out of access logs. Blocking (one
        database read): call it before serving, or via asyncio.to_thread.
        """
        if self.store.has_users():
            return None
        base = (self.settings.public_base_url or base_url or "").rstrip("/")
        return f"{base}{SETUP_PATH}#token={self.first_run.new_token()}"

    def join_authorizer(self) -> JoinAuthorizer:
        return join_authorizer(self.store, self.auth)

    async def close(self) -> None:
        await self.analyses.aclose()
        await self.dicom.aclose()
        await asyncio.to_thread(self.similar.runner.close)
        await asyncio.to_thread(self.store.close)
