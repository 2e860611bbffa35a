"""Routes of video consults: open a call on a case, list and end calls, capture the patient's frame into the case.

The call runs in the streaming spine, which this package does not import: the composition root passes in a
`LiveConsults` (the live rooms) so that ending a consult hangs up and a capture can read the patient's newest frame.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from telehealth.analysis_worker import AnalysisRunner
from telehealth.auth import Authenticator
from telehealth.decode_slots import DecodeSlots
from telehealth.errors import Conflict
from telehealth.http_route import telehealth_router
from telehealth.photo_intake import IntakeLimits, clean_photo
from telehealth.records import Actor, PhotoSource, Role
from telehealth.schemas import PhotoReceipt, RowId
from telehealth.session_tokens import JOIN_TICKET_TTL_S
from telehealth.settings import TelehealthSettings
from telehealth.store.cases import CaseStore
from telehealth.store.consults import (
    ConsultRecord,
    ConsultSide,
    authorize_join,
    clinician_consult,
    end_consult,
    list_consults,
    open_consult,
    require_live,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"


class LiveConsults(Protocol):
    """What telehealth needs from the live rooms (stream.rooms.ConsultRooms provides it)."""

    def presence(self, room_id: str) -> dict[str, bool]: ...

    async def close_room(self, room_id: str) -> None: ...

    async def capture_patient_jpeg(self, room_id: str) -> bytes | None: ...


class ConsultOut(BaseModel):
    id: int
    case_id: int
    room_id: str
    state: str  # open, ended, expired
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    clinician_url: str
    patient_url: str | None = None  # only in the answer that opened the consult: the key is not kept
    connected: dict[str, bool]  # which sides are in the call now


class JoinTicketOut(BaseModel):
    credential: str
    expires_in_s: int


def consult_router(
    store: CaseStore,
    auth: Authenticator,
    settings: TelehealthSettings,
    analyses: AnalysisRunner,
    limits: IntakeLimits,
    live: LiveConsults,
    decodes: DecodeSlots | None = None,
) -> APIRouter:
    if decodes is None:
        decodes = DecodeSlots(settings.max_concurrent_decodes)
    router = telehealth_router(settings.max_json_bytes)
    clinicians = auth.require(Role.gp, Role.admin)
    consult_page = (STATIC_DIR / "consult.html").read_bytes()
    base = settings.public_base_url.rstrip("/")

    def out(record: ConsultRecord, patient_key: str | None = None) -> ConsultOut:
        # Keys ride in the fragment: browsers never send it to the server, so it stays out of access logs.
        return ConsultOut(
            id=record.id,
            case_id=record.case_id,
            room_id=record.room_id,
            state=record.state,
            created_at=record.created_at,
            expires_at=record.expires_at,
            ended_at=record.ended_at,
            clinician_url=f"{base}/consult#consult={record.id}&room={record.room_id}",
            patient_url=f"{base}/consult#room={record.room_id}&key={patient_key}" if patient_key else None,
            connected=live.presence(record.room_id),
        )

    @router.post("/api/cases/{case_id}/consults", response_model=ConsultOut, status_code=201, tags=["telehealth"])
    def open_call(case_id: RowId, actor: Actor = Depends(clinicians)) -> ConsultOut:
        """Open a video consult on a case; the answer holds the patient's join link (shown once, like an invite)."""
        made = open_consult(store, actor, case_id, settings.consult_ttl_s)
        return out(made.record, made.patient_key)

    @router.post("/api/consults/{consult_id}/join-ticket", response_model=JoinTicketOut, tags=["telehealth"])
    def join_ticket(consult_id: RowId, request: Request, actor: Actor = Depends(clinicians)) -> JoinTicketOut:
        """A credential the call window joins this consult's room with, valid for a couple of minutes: the page
        signed in by cookie never sees the session token itself."""
        record = clinician_consult(store, actor, consult_id)
        require_live(record)
        token = auth.token_from(request)
        assert token is not None  # `clinicians` refused the request otherwise
        return JoinTicketOut(credential=auth.join_ticket_for(token, record.room_id), expires_in_s=JOIN_TICKET_TTL_S)

    @router.get("/api/cases/{case_id}/consults", response_model=list[ConsultOut], tags=["telehealth"])
    def list_calls(case_id: RowId, actor: Actor = Depends(auth.require())) -> list[ConsultOut]:
        return [out(r) for r in list_consults(store, actor, case_id)]

    @router.post("/api/consults/{consult_id}/end", response_model=ConsultOut, tags=["telehealth"])
    async def end_call(consult_id: RowId, actor: Actor = Depends(clinicians)) -> ConsultOut:
        """End the consult: both sides are hung up and the links stop working."""
        record = await run_in_threadpool(end_consult, store, actor, consult_id)
        await live.close_room(record.room_id)
        return out(record)

    @router.post(
        "/api/consults/{consult_id}/capture", response_model=PhotoReceipt, status_code=201, tags=["telehealth"]
    )
    async def capture(consult_id: RowId, actor: Actor = Depends(clinicians)) -> PhotoReceipt:
        """Store the patient's current video frame in the case as a photo submission (then analysed like any upload)."""
        record = await run_in_threadpool(clinician_consult, store, actor, consult_id)
        require_live(record)
        jpeg = await live.capture_patient_jpeg(record.room_id)
        if jpeg is None:
            raise Conflict(
                "no patient video to capture: the patient is not connected or their camera has sent nothing yet"
            )
        photo = await decodes.run(clean_photo, jpeg, limits)  # same checks (and decode slots) as an upload
        stored, _created = await run_in_threadpool(
            store.add_photo, actor, record.case_id, photo, None, PhotoSource.consult_capture
        )
        analyses.schedule(stored.id)
        return PhotoReceipt.of(stored)

    @router.get("/consult", response_class=HTMLResponse, include_in_schema=False)
    async def consult() -> HTMLResponse:
        return HTMLResponse(consult_page, headers={"Cache-Control": "no-cache"})

    return router


JoinAuthorizer = Callable[[str, str], Awaitable[tuple[ConsultSide, ConsultRecord]]]


def join_authorizer(store: CaseStore, auth: Authenticator) -> JoinAuthorizer:
    """`(room_id, credential) -> (side, record)`, or JoinRefused, for the composition root to adapt to the streaming
    spine's grant; the database check runs in a worker thread."""

    async def authorize(room_id: str, credential: str) -> tuple[ConsultSide, ConsultRecord]:
        return await run_in_threadpool(authorize_join, store, auth.tokens, room_id, credential)

    return authorize
