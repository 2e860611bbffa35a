"""Routes to start, stop and read the recording of a stream (surgeons on /monitor; the stream roles sign in here as
for watching). A consult's recording is started from the consult's own routes (telehealth), through the same
LiveRecordings."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from stream.access import AccessDenied, Principal, StreamAccess
from stream.hub import UnknownStream
from stream.metrics import StreamMetrics
from stream.recording.contracts import RecordingRefused
from stream.recording.live import ROOM_KEY, LiveRecordings, RecordingStatus


class StartRecordingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_id: int = Field(ge=1, le=2**31 - 1, description="the case the recording belongs to (its consent decides)")


class RecordingStatusOut(BaseModel):
    stream_id: str
    state: Literal["idle", "recording", "stopped", "failed"]
    recording_id: int | None = None
    case_id: int | None = None
    started_at: float | None = None
    frames: int = 0
    duration_s: float = 0.0
    has_audio: bool = False
    reason: str = ""

    @classmethod
    def of(cls, stream_id: str, status: RecordingStatus | None) -> RecordingStatusOut:
        if status is None:
            return cls(stream_id=stream_id, state="idle")
        return cls(
            stream_id=stream_id,
            state=status.state,
            recording_id=status.recording_id,
            case_id=status.case_id,
            started_at=status.started_at,
            frames=status.frames,
            duration_s=status.duration_s,
            has_audio=status.has_audio,
            reason=status.reason,
        )


def recording_router(recordings: LiveRecordings, access: StreamAccess, metrics: StreamMetrics) -> APIRouter:
    router = APIRouter()

    async def recorder(request: Request) -> Principal:
        try:
            token = access.token_from(request.headers, request.cookies, cookie_ok=_cookie_ok(request, access))
            if token is None:
                raise AccessDenied("not_authenticated", "sign in first: send 'Authorization: Bearer <token>'")
            principal = await access.authenticate(token)
            if not principal.may_publish:
                raise AccessDenied("forbidden", f"recording is for clinicians; you are signed in as {principal.role}")
        except AccessDenied as exc:
            metrics.access_refused.labels("api", exc.code).inc()
            raise HTTPException(403 if exc.code == "forbidden" else 401, exc.message) from None
        return principal

    @router.post("/api/streams/{stream_id}/recording", response_model=RecordingStatusOut, status_code=201)
    async def start(
        stream_id: str, body: StartRecordingBody, principal: Principal = Depends(recorder)
    ) -> RecordingStatusOut:
        """Record the stream's annotated video (and its findings track) for a case; refused without its consent."""
        try:
            status = await recordings.start_stream(stream_id, body.case_id, principal.user_id, principal.role)
        except UnknownStream as exc:
            raise HTTPException(404, str(exc)) from None
        except RecordingRefused as exc:
            raise HTTPException(exc.status, exc.message) from None
        return RecordingStatusOut.of(stream_id, status)

    @router.post("/api/streams/{stream_id}/recording/stop", response_model=RecordingStatusOut)
    async def stop(stream_id: str, principal: Principal = Depends(recorder)) -> RecordingStatusOut:
        try:
            status = await recordings.stop(stream_id, principal.user_id)
        except RecordingRefused as exc:
            raise HTTPException(exc.status, exc.message) from None
        return RecordingStatusOut.of(stream_id, status)

    @router.get("/api/streams/{stream_id}/recording", response_model=RecordingStatusOut)
    async def status(stream_id: str, _principal: Principal = Depends(recorder)) -> RecordingStatusOut:
        if stream_id.startswith(ROOM_KEY):  # a consult's recording is read through its consult, not here
            raise HTTPException(404, f"unknown stream {stream_id!r}")
        return RecordingStatusOut.of(stream_id, recordings.status(stream_id))

    return router


# The monitor page's own header: another site's page cannot add it to a request without a CORS preflight, which this
# server never grants, so a write by session cookie that carries it (from an allowed Origin) came from our page.
PAGE_REQUEST_HEADER = "x-scopecast-request"


def _cookie_ok(request: Request, access: StreamAccess) -> bool:
    if request.method in ("GET", "HEAD"):
        return True
    origin = request.headers.get("origin")
    return (
        request.headers.get(PAGE_REQUEST_HEADER) == "1"
        and origin is not None
        and access.origin_allowed(origin, request.headers.get("host"), request.url.scheme)
    )
