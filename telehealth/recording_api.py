"""Routes of recording consent and recordings on a case: take and withdraw consent, list, play (with Range, so the
player can seek), read the findings track, delete (admin), and start or stop the recording of a video consult.

Recording itself runs in the streaming spine, which this package does not import: the composition root passes in a
`LiveRecorder` (start/stop a consult's recording) and a `ConsentWithdrawn` hook that stops what is recording.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from telehealth.auth import Authenticator
from telehealth.errors import NotFound, TelehealthError
from telehealth.http_route import telehealth_router
from telehealth.recording_files import RecordingFiles
from telehealth.recording_records import ConsentRecord, RecordingPurpose, RecordingRecord
from telehealth.records import Actor, Role
from telehealth.schemas import RowId
from telehealth.settings import TelehealthSettings
from telehealth.store.cases import CaseStore
from telehealth.store.consults import clinician_consult, require_live
from telehealth.store.recording_consents import list_consents, record_consent, withdraw_consent
from telehealth.store.recordings import delete_recording, list_recordings, view_recording


@dataclass(frozen=True)
class LiveRecordingState:
    """A consult's recording as the live side reports it."""

    recording_id: int
    state: str  # recording, stopped, failed
    has_audio: bool
    frames: int
    reason: str


class LiveRecorder(Protocol):
    """What telehealth needs from the live recordings (scopecast wires stream.recording.live.LiveRecordings in);
    refusals come back as TelehealthError with their reason."""

    async def start_consult(self, room_id: str, case_id: int, actor: Actor) -> LiveRecordingState: ...

    async def stop_consult(self, room_id: str, actor: Actor) -> LiveRecordingState: ...


ConsentWithdrawn = Callable[[int], Awaitable[None]]  # case id -> stop its recordings


class RecordingStartRefused(TelehealthError):
    """The live side refused to start or stop (no consent, already recording, the patient not connected)."""

    def __init__(self, reason: str, status_code: int = 409) -> None:
        super().__init__(reason)
        self.status_code = status_code


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: RecordingPurpose
    patient_video: bool = Field(description="the patient's camera may be recorded (consults; a stream is always video)")
    patient_audio: bool = Field(description="the patient's sound may be recorded (consults)")
    representative_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="who consented for the patient; null: the patient"
    )
    consented_at: datetime | None = Field(default=None, description="when consent was given; null: now")


class ConsentOut(BaseModel):
    id: int
    case_id: int
    consented_by: str  # "patient" or the representative's name
    representative_name: str | None
    recorded_by: int
    consented_at: datetime
    purpose: RecordingPurpose
    patient_video: bool
    patient_audio: bool
    active: bool
    withdrawn_at: datetime | None

    @classmethod
    def of(cls, c: ConsentRecord) -> ConsentOut:
        return cls(
            id=c.id,
            case_id=c.case_id,
            consented_by=c.representative_name or "patient",
            representative_name=c.representative_name,
            recorded_by=c.recorded_by,
            consented_at=c.consented_at,
            purpose=c.purpose,
            patient_video=c.patient_video,
            patient_audio=c.patient_audio,
            active=c.active,
            withdrawn_at=c.withdrawn_at,
        )


class RecordingOut(BaseModel):
    id: int
    case_id: int
    source: str
    state: str  # recording, stopped, ended_early
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    size_bytes: int | None
    frames: int | None
    has_audio: bool
    started_by: int
    started_by_name: str
    end_reason: str | None
    video_url: str
    findings_url: str

    @classmethod
    def of(cls, r: RecordingRecord, started_by_name: str) -> RecordingOut:
        return cls(
            id=r.id,
            case_id=r.case_id,
            source=r.source.value,
            state=r.state,
            started_at=r.started_at,
            ended_at=r.ended_at,
            duration_s=r.duration_s,
            size_bytes=r.size_bytes,
            frames=r.frames,
            has_audio=r.has_audio,
            started_by=r.started_by,
            started_by_name=started_by_name,
            end_reason=r.end_reason,
            video_url=f"/api/recordings/{r.id}/video",
            findings_url=f"/api/recordings/{r.id}/findings",
        )


class LiveRecordingOut(BaseModel):
    recording_id: int
    state: str
    has_audio: bool
    frames: int
    reason: str


def recording_router(
    store: CaseStore,
    auth: Authenticator,
    settings: TelehealthSettings,
    files: RecordingFiles,
    live: LiveRecorder | None = None,
    consent_withdrawn: ConsentWithdrawn | None = None,
) -> APIRouter:
    router = telehealth_router(settings.max_json_bytes)
    clinicians = auth.require(Role.gp, Role.surgeon, Role.admin)
    consult_clinicians = auth.require(Role.gp, Role.admin)
    admins = auth.require(Role.admin)

    @router.post(
        "/api/cases/{case_id}/recording-consents", response_model=ConsentOut, status_code=201, tags=["recordings"]
    )
    def take_consent(case_id: RowId, body: ConsentIn, actor: Actor = Depends(clinicians)) -> ConsentOut:
        """Write down the consent to record this case: who gave it, when, for what use, what it covers."""
        made = record_consent(
            store,
            actor,
            case_id,
            body.purpose,
            body.patient_video,
            body.patient_audio,
            body.representative_name,
            body.consented_at,
        )
        return ConsentOut.of(made)

    @router.get("/api/cases/{case_id}/recording-consents", response_model=list[ConsentOut], tags=["recordings"])
    def consents(case_id: RowId, actor: Actor = Depends(clinicians)) -> list[ConsentOut]:
        return [ConsentOut.of(c) for c in list_consents(store, actor, case_id)]

    @router.post(
        "/api/cases/{case_id}/recording-consents/{consent_id}/withdraw", response_model=ConsentOut, tags=["recordings"]
    )
    async def withdraw(case_id: RowId, consent_id: RowId, actor: Actor = Depends(clinicians)) -> ConsentOut:
        """Withdraw a consent: nothing more is recorded under it, and recordings of the case running now stop."""
        withdrawn = await run_in_threadpool(withdraw_consent, store, actor, case_id, consent_id)
        if consent_withdrawn is not None:
            await consent_withdrawn(case_id)
        return ConsentOut.of(withdrawn)

    @router.get("/api/cases/{case_id}/recordings", response_model=list[RecordingOut], tags=["recordings"])
    def recordings(case_id: RowId, actor: Actor = Depends(clinicians)) -> list[RecordingOut]:
        return [RecordingOut.of(r, name) for r, name in list_recordings(store, actor, case_id)]

    @router.get("/api/recordings/{recording_id}/video", tags=["recordings"])
    def video(recording_id: RowId, request: Request, actor: Actor = Depends(clinicians)) -> Response:
        """The MP4, with Range support for seeking; the first request of a playback is audited as a view."""
        record = view_recording(store, actor, recording_id, audit=_starts_playback(request))
        return _file(files, record.video_file, "video/mp4")

    @router.get("/api/recordings/{recording_id}/findings", tags=["recordings"])
    def findings(recording_id: RowId, actor: Actor = Depends(clinicians)) -> Response:
        """The findings track: one JSON line per processed frame, `t` in seconds of the video."""
        record = view_recording(store, actor, recording_id, audit=False)  # the video's own request is the view
        return _file(files, record.findings_file, "application/x-ndjson")

    @router.delete("/api/recordings/{recording_id}", status_code=204, tags=["recordings"])
    def delete(recording_id: RowId, actor: Actor = Depends(admins)) -> Response:
        delete_recording(store, files, actor, recording_id)
        return Response(status_code=204)

    if live is not None:
        recorder = live

        @router.post("/api/consults/{consult_id}/recording", response_model=LiveRecordingOut, tags=["recordings"])
        async def start_consult(consult_id: RowId, actor: Actor = Depends(consult_clinicians)) -> LiveRecordingOut:
            """Record this consult: the patient's video (and sound, only if consented) under the case's consent."""
            record = await run_in_threadpool(clinician_consult, store, actor, consult_id)
            require_live(record)
            return _live_out(await recorder.start_consult(record.room_id, record.case_id, actor))

        @router.post("/api/consults/{consult_id}/recording/stop", response_model=LiveRecordingOut, tags=["recordings"])
        async def stop_consult(consult_id: RowId, actor: Actor = Depends(consult_clinicians)) -> LiveRecordingOut:
            record = await run_in_threadpool(clinician_consult, store, actor, consult_id)
            return _live_out(await recorder.stop_consult(record.room_id, actor))

    return router


def _starts_playback(request: Request) -> bool:
    """A player fetches a file in many ranges; only the one from the start counts as a new view."""
    wanted = request.headers.get("range", "").replace(" ", "")
    return wanted in ("", "bytes=0-") or wanted.startswith("bytes=0-")


def _file(files: RecordingFiles, name: str, media_type: str) -> Response:
    path = files.path(name)
    if not path.exists():
        raise NotFound("the recording's file is missing on the server")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, no-store"})


def _live_out(state: LiveRecordingState) -> LiveRecordingOut:
    return LiveRecordingOut(
        recording_id=state.recording_id,
        state=state.state,
        has_audio=state.has_audio,
        frames=state.frames,
        reason=state.reason,
    )
