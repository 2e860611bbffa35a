"""Routes of patient records: add, list (with the latest photo and trend), read and correct a patient; invite a
patient to the app (link and QR code); and the event stream an open case page listens to."""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from telehealth.auth import Authenticator
from telehealth.case_events import case_event_stream
from telehealth.http_route import telehealth_router
from telehealth.invite_qr import qr_svg_data_url
from telehealth.patient_identity import clean_identity
from telehealth.patient_list import patients_list
from telehealth.records import Actor, Role
from telehealth.schemas import (
    InviteOut,
    PatientCreate,
    PatientInviteCreate,
    PatientOut,
    PatientSummaryOut,
    RowId,
)
from telehealth.settings import TelehealthSettings
from telehealth.store.case_changes import CaseFingerprint, case_fingerprint
from telehealth.store.cases import CaseStore
from telehealth.store.invites import create_invite
from telehealth.store.patients import add_patient, read_patient, update_patient


def invite_out(
    settings: TelehealthSettings, token: str, patient_id: int, expires_at: datetime, request_base: str = ""
) -> InviteOut:
    """The link is absolute (a QR code of a bare path opens nothing on a phone): public_base_url, else the address
    the GP's own browser reached this server at."""
    base = (settings.public_base_url or request_base).rstrip("/")
    # The token rides in the fragment: browsers never send it to the server, so it stays out of access logs.
    url = f"{base}/patient#invite={token}"
    return InviteOut(invite_url=url, expires_at=expires_at, patient_id=patient_id, qr_svg_data_url=qr_svg_data_url(url))


def patient_router(store: CaseStore, auth: Authenticator, settings: TelehealthSettings) -> APIRouter:
    router = telehealth_router(settings.max_json_bytes)
    staff = auth.require(Role.gp, Role.admin)
    anyone = auth.require()

    # Plain `def` routes: FastAPI runs them in its threadpool, off the event loop.
    @router.post(
        "/api/patients",
        response_model=PatientOut,
        status_code=201,
        tags=["telehealth"],
        responses={409: {"description": "the MRN or NHS number is another patient's"}},
    )
    def new_patient(body: PatientCreate, actor: Actor = Depends(staff)) -> PatientOut:
        identity = clean_identity(body.full_name, body.birth_date, body.identifier_kind, body.identifier_value)
        return PatientOut.of(add_patient(store, actor, identity))

    @router.get("/api/patients", response_model=list[PatientSummaryOut], tags=["telehealth"])
    def list_patients(actor: Actor = Depends(staff)) -> list[PatientSummaryOut]:
        return patients_list(store, actor)

    @router.get("/api/patients/{patient_id}", response_model=PatientOut, tags=["telehealth"])
    def get_patient(patient_id: RowId, actor: Actor = Depends(staff)) -> PatientOut:
        return PatientOut.of(read_patient(store, actor, patient_id))

    @router.put("/api/patients/{patient_id}", response_model=PatientOut, tags=["telehealth"])
    def edit_patient(patient_id: RowId, body: PatientCreate, actor: Actor = Depends(staff)) -> PatientOut:
        identity = clean_identity(body.full_name, body.birth_date, body.identifier_kind, body.identifier_value)
        return PatientOut.of(update_patient(store, actor, patient_id, identity))

    @router.post("/api/patients/{patient_id}/invites", response_model=InviteOut, status_code=201, tags=["telehealth"])
    def invite_patient(
        patient_id: RowId, body: PatientInviteCreate, request: Request, actor: Actor = Depends(staff)
    ) -> InviteOut:
        """A one-time link (and its QR code) that lets this patient sign up or sign in and see their cases."""
        made = create_invite(store, actor, body.email, settings.invite_ttl_s, patient_id)
        return invite_out(settings, made.token, made.patient_id, made.expires_at, str(request.base_url))

    @router.get("/api/cases/{case_id}/events", tags=["telehealth"], response_class=StreamingResponse)
    async def case_events(case_id: RowId, request: Request, actor: Actor = Depends(anyone)) -> StreamingResponse:
        """Server-sent events: `ready`, then `changed` whenever something on the case page would change."""
        token = auth.token_from(request)
        assert token is not None  # `anyone` refused the request otherwise
        await run_in_threadpool(store.require_case, actor, case_id)

        async def fingerprint() -> CaseFingerprint:
            return await asyncio.to_thread(case_fingerprint, store, actor, case_id)

        async def session_alive() -> Actor:
            return await asyncio.to_thread(auth.actor_for_token, token, False)

        stream = case_event_stream(fingerprint, session_alive, request.is_disconnected, settings.case_events_poll_s)
        # no-transform and X-Accel-Buffering: proxies that buffer would hold the events back.
        headers = {"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    return router
