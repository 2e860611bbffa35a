"""Routes of a case's DICOM: each instance's delivery to the PACS (sent, or failed and why), and queueing the case
(again) for the PACS."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from telehealth.auth import Authenticator
from telehealth.dicom.outbox import DicomOutbox
from telehealth.dicom.records import OutboxItem
from telehealth.errors import Conflict, NotFound
from telehealth.http_route import telehealth_router
from telehealth.records import Actor, Role
from telehealth.schemas import RowId
from telehealth.settings import TelehealthSettings
from telehealth.store.cases import CaseStore
from telehealth.store.dicom_outbox import audit_case_export, case_outbox, case_photo_ids


class DicomInstanceStatus(BaseModel):
    photo_id: int
    kind: str  # photo, capture, overlay, measurements
    sop_instance_uid: str
    state: str  # queued, sent, failed (failed stays queued: retried at next_attempt_at)
    attempts: int
    failure: str | None  # conflict, refused, server_error, unreachable, timeout, build_failed
    http_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None

    @classmethod
    def of(cls, item: OutboxItem) -> DicomInstanceStatus:
        return cls(
            photo_id=item.photo_id,
            kind=item.kind.value,
            sop_instance_uid=item.sop_instance_uid,
            state=item.state.value,
            attempts=item.attempts,
            failure=None if item.failure is None else item.failure.value,
            http_status=item.http_status,
            last_error=item.last_error,
            next_attempt_at=item.next_attempt_at,
            sent_at=item.sent_at,
        )


class CaseDicomStatus(BaseModel):
    case_id: int
    pacs_configured: bool
    instances: list[DicomInstanceStatus]


def dicom_router(store: CaseStore, auth: Authenticator, settings: TelehealthSettings, outbox: DicomOutbox) -> APIRouter:
    router = telehealth_router(settings.max_json_bytes)
    clinicians = auth.require(Role.gp, Role.admin, Role.surgeon)

    def status(case_id: int) -> CaseDicomStatus:
        items = case_outbox(store, case_id)
        return CaseDicomStatus(
            case_id=case_id, pacs_configured=outbox.enabled, instances=[DicomInstanceStatus.of(i) for i in items]
        )

    # Plain `def` routes: FastAPI runs them in its threadpool, so database and file work stay off the event loop.
    @router.get("/api/cases/{case_id}/dicom", response_model=CaseDicomStatus, tags=["telehealth"])
    def get_status(case_id: RowId, actor: Actor = Depends(clinicians)) -> CaseDicomStatus:
        """Each of the case's DICOM instances and its delivery to the PACS."""
        store.require_case(actor, case_id)
        return status(case_id)

    @router.post("/api/cases/{case_id}/dicom", response_model=CaseDicomStatus, status_code=202, tags=["telehealth"])
    def queue_case(case_id: RowId, actor: Actor = Depends(auth.require(Role.gp, Role.admin))) -> CaseDicomStatus:
        """Queue every photo of the case for the PACS, those already sent included (a resend: same UIDs)."""
        store.require_case(actor, case_id)
        if not outbox.enabled:
            raise Conflict("no PACS is configured: set SCOPECAST_DICOMWEB_URL to the PACS's DICOMweb address")
        photo_ids = case_photo_ids(store, case_id)
        if not photo_ids:
            raise Conflict(f"case {case_id} has no photos: there is nothing to send")
        missing = []
        for photo_id in photo_ids:
            try:
                outbox.enqueue_photo(photo_id, again=True)
            except NotFound as exc:
                missing.append(exc.reason)
        if len(missing) == len(photo_ids):
            raise Conflict(f"no photo of case {case_id} can be sent: " + "; ".join(missing))
        audit_case_export(store, actor.user_id, case_id)
        return status(case_id)

    return router
