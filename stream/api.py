"""HTTP and WebSocket routes of the streaming spine: signaling, stream list, event schema, pages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.websockets import WebSocketDisconnect, WebSocketState

from perception.vlm.base import Turn, VlmBackend, VlmError
from stream.access import AccessDenied, Principal, StreamAccess
from stream.dialogue import ask_backend, snapshot, vlm_error_code
from stream.events import server_event_schema
from stream.hub import StreamHub, TooManySessions, UnknownStream
from stream.metrics import StreamMetrics
from stream.rooms import ConsultRooms, RoomRefused
from stream.session import PeerSession
from stream.signaling import (
    AuthenticatedMessage,
    AuthRequest,
    ErrorMessage,
    JoinRequest,
    PublishRequest,
    SignalingError,
    WatchRequest,
    parse_client_message,
)
from stream.turn import IceServer, TurnRelay

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
_COOKIE_METHODS = frozenset({"GET", "HEAD"})  # a cookie on writes would open the door to cross-site request forgery


@dataclass(frozen=True)
class SocketLimits:
    """What one signaling socket may do before it is closed."""

    max_message_bytes: int = 64 * 1024
    offer_timeout_s: float = 10.0  # from opening until an answer was sent: idle sockets do not keep their slot
    max_errors: int = 20  # refused messages on one socket


class TurnBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=2000)
    answer: str = Field(max_length=20_000)


class AskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="plain text, at most 2,000 characters")
    frame_seq: int | None = Field(default=None, ge=1)
    history: list[TurnBody] = Field(default_factory=list, max_length=6)


def signed_in_viewer(access: StreamAccess, metrics: StreamMetrics) -> Callable[[Request], Awaitable[Principal]]:
    """A route dependency: the caller's principal, who must be signed in (bearer token; the session cookie on reads
    only) and allowed to watch streams; else 401 or 403 naming the problem."""

    async def caller(request: Request) -> Principal:
        try:
            token = access.token_from(request.headers, request.cookies, cookie_ok=request.method in _COOKIE_METHODS)
            if token is None:
                raise AccessDenied(
                    "not_authenticated", "sign in first: send 'Authorization: Bearer <token>' from /api/login"
                )
            principal = await access.authenticate(token)
            if not principal.may_watch:
                raise AccessDenied("forbidden", f"streams are for clinicians; you are signed in as {principal.role}")
        except AccessDenied as exc:
            metrics.access_refused.labels("api", exc.code).inc()
            status = 403 if exc.code == "forbidden" else 401
            raise HTTPException(
                status, exc.message, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None
            ) from None
        return principal

    return caller


def streaming_router(
    hub: StreamHub,
    metrics: StreamMetrics,
    access: StreamAccess,
    *,
    limits: SocketLimits = SocketLimits(),
    video_codec: str = "auto",
    vlm: VlmBackend | None = None,
    ice_servers: list[IceServer] | None = None,
    rooms: ConsultRooms | None = None,
    turn: TurnRelay | None = None,
    ice_transport_policy: str = "all",
    janus_viewers: Callable[[str], int | None] | None = None,
) -> APIRouter:
    """Every stream route needs a principal from `access` that may watch (publish, for `publish`); consult-room `join`
    carries its own credential. `ice_servers` are RTCIceServer dicts (urls, username, credential), given to both ends
    of each call; `rooms` enables `join` (consult rooms); `janus_viewers(stream_id)` counts a stream's viewers on
    Janus, where it is used."""
    router = APIRouter()

    caller = signed_in_viewer(access, metrics)

    async def page(request: Request, file_name: str) -> Response:
        """A clinician's page, or the way to one: sign-in when signed out, a plain refusal for other roles."""
        try:
            token = access.token_from(request.headers, request.cookies, cookie_ok=True)
            if token is None:
                raise AccessDenied("not_authenticated", "not signed in")
            principal = await access.authenticate(token)
        except AccessDenied as exc:
            metrics.access_refused.labels("page", exc.code).inc()
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{access.sign_in_path}?next={quote(target, safe='')}", status_code=303)
        if not principal.may_watch:
            metrics.access_refused.labels("page", "forbidden").inc()
            return HTMLResponse(_FORBIDDEN_PAGE.format(role=principal.role), status_code=403)
        return FileResponse(STATIC_DIR / file_name, headers={"Cache-Control": "no-store"})

    async def ice_servers_for(request: Request) -> list[IceServer]:
        """The static STUN servers for anyone; time-limited TURN credentials only for a signed-in user or a
        consult participant (X-Consult-Room / X-Consult-Key: a patient who joins with the invite link has no
        session), so the relay is not open to whoever finds the page."""
        servers: list[IceServer] = list(ice_servers or [])
        if turn is None:
            return servers
        who = await _turn_user(request)
        if who is not None:
            servers.append(turn.credentials(who))
        return servers

    async def _turn_user(request: Request) -> str | None:
        try:
            token = access.token_from(request.headers, request.cookies, cookie_ok=True)
            if token is not None:
                return f"user{(await access.authenticate(token)).user_id}"
        except AccessDenied:
            pass
        room, key = request.headers.get("x-consult-room"), request.headers.get("x-consult-key")
        if rooms is not None and room and key:
            try:
                return f"room-{(await rooms.authorize(room, key)).side}"
            except RoomRefused:
                return None
        return None

    @router.get("/api/ice-servers")
    async def ice_server_list(request: Request) -> list[IceServer]:
        """STUN/TURN servers the browser should use (RTCIceServer dicts)."""
        return await ice_servers_for(request)

    @router.get("/api/ice-config")
    async def ice_config(request: Request) -> dict[str, Any]:
        """The RTCPeerConnection configuration for pages: servers, and whether media must go through TURN."""
        return {"iceServers": await ice_servers_for(request), "iceTransportPolicy": ice_transport_policy}

    @router.get("/monitor", include_in_schema=False)
    async def monitor_page(request: Request) -> Response:
        return await page(request, "monitor.html")

    @router.get("/capture", include_in_schema=False)
    async def capture_page(request: Request) -> Response:
        return await page(request, "capture.html")

    @router.get("/api/streams")
    async def list_streams(_principal: Principal = Depends(caller)) -> list[dict[str, Any]]:
        return [
            {
                "stream_id": e.stream_id,
                "kind": e.kind,
                "label": e.label,
                "model": e.model_name,
                "viewers": e.pipeline.viewers,  # readers of the annotated output here (Janus's publisher is one)
                "janus_viewers": janus_viewers(e.stream_id) if janus_viewers is not None else None,
                "ai_available": e.pipeline.status.available,
                "ai_state": e.pipeline.status.kind,
                "ai_reason": e.pipeline.status.reason,
                "size": list(e.size) if e.size else None,
            }
            for e in hub.streams()
        ]

    @router.get("/api/streams/{stream_id}")
    async def stream_detail(stream_id: str, _principal: Principal = Depends(caller)) -> dict[str, Any]:
        try:
            entry = hub.get(stream_id)
        except UnknownStream as exc:
            raise HTTPException(404, str(exc)) from None
        result = entry.pipeline.latest_result
        return {
            "stream_id": entry.stream_id,
            "kind": entry.kind,
            "model": entry.model_name,
            "ai_available": entry.pipeline.status.available,
            "ai_state": entry.pipeline.status.kind,
            "ai_reason": entry.pipeline.status.reason,
            "last_frame_seq": entry.pipeline.frames.seq,
            "last_result_seq": result.seq if result else None,
            "last_inference_ms": round(result.findings.inference_ms, 2) if result else None,
            "objects": len(result.findings.objects) if result else 0,
        }

    @router.post("/api/streams/{stream_id}/ask")
    async def ask(stream_id: str, body: AskBody, _principal: Principal = Depends(caller)) -> dict[str, Any]:
        """Ask the VLM about a stream's newest analysed frame (or a recent `frame_seq`); returns the whole answer."""
        if vlm is None:
            raise HTTPException(503, "questions are not enabled on this server")
        try:
            result = await snapshot(hub.get, stream_id, body.frame_seq)
            _request, pieces = await ask_backend(
                vlm, result, body.question, tuple(Turn(t.question, t.answer) for t in body.history)
            )
            text = "".join([piece async for piece in pieces])
        except UnknownStream as exc:
            raise HTTPException(404, str(exc)) from None
        except SignalingError as exc:
            raise HTTPException(409 if exc.code == "no_frame" else 404, exc.message) from None
        except VlmError as exc:
            status = {"invalid_question": 422, "vlm_busy": 429}.get(vlm_error_code(exc), 503)
            raise HTTPException(status, str(exc)) from None
        info = vlm.info
        return {
            "stream_id": stream_id,
            "frame_seq": result.seq,
            "answer": text,
            "model": {"name": info.name, "version": info.version, "backend": info.backend},
            "objects": len(result.findings.objects),
        }

    @router.get("/api/schema/events")
    async def events_schema() -> dict[str, Any]:
        """JSON Schema of every event sent on the data channel (findings and status)."""
        return server_event_schema()

    @router.websocket("/ws")
    async def signaling(websocket: WebSocket) -> None:
        await websocket.accept()
        if not access.origin_allowed(
            websocket.headers.get("origin"), websocket.headers.get("host"), websocket.url.scheme
        ):
            metrics.access_refused.labels("socket", "origin_not_allowed").inc()
            message = "this page's origin may not open a scopecast socket (see SCOPECAST_ALLOWED_ORIGINS)"
            await _refuse(websocket, "origin_not_allowed", message, 1008)
            return
        address = websocket.client.host if websocket.client else ""
        try:
            hub.open_session(address)
        except TooManySessions as exc:
            metrics.signaling_errors.labels("too_many_sessions").inc()
            await _refuse(websocket, "too_many_sessions", str(exc), 1013)
            return
        metrics.open_sockets.inc()
        try:
            own_servers = list(ice_servers or []) + ([turn.credentials("scopecast")] if turn is not None else [])
            session = PeerSession(hub, metrics, video_codec, vlm, own_servers, rooms)
            try:
                state = _SocketState(await _cookie_principal(websocket, access))
                await _serve_socket(websocket, session, state, access, metrics, limits)
            finally:
                await session.close()  # never raises
        finally:
            hub.close_session(address)
            metrics.open_sockets.dec()
            if websocket.client_state == WebSocketState.CONNECTED:
                try:
                    await websocket.close()
                except Exception:  # the peer is already gone
                    pass

    return router


@dataclass
class _SocketState:
    principal: Principal | None
    errors: int = 0
    answered: bool = False


async def _cookie_principal(websocket: WebSocket, access: StreamAccess) -> Principal | None:
    """A browser's socket carries the session cookie (the Origin check above makes that safe); a bad one is ignored
    here and named when the socket asks for something that needs it."""
    token = websocket.cookies.get(access.cookie_name)
    if token is None:
        return None
    try:
        return await access.authenticate(token)
    except AccessDenied:
        return None


async def _refuse(websocket: WebSocket, code: str, message: str, close_code: int) -> None:
    try:
        await websocket.send_text(ErrorMessage(code=code, message=message, closing=True).model_dump_json())
        await websocket.close(code=close_code)
    except Exception:  # the client left first
        pass


async def _serve_socket(
    websocket: WebSocket,
    session: PeerSession,
    state: _SocketState,
    access: StreamAccess,
    metrics: StreamMetrics,
    limits: SocketLimits,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.offer_timeout_s
    closed = asyncio.ensure_future(session.closed.wait())
    try:
        while True:
            receive = asyncio.ensure_future(websocket.receive())
            timeout = None if state.answered else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait({receive, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                receive.cancel()
                metrics.signaling_errors.labels("offer_timeout").inc()
                await _refuse(
                    websocket,
                    "offer_timeout",
                    f"no valid offer within {limits.offer_timeout_s:g} s; open a new socket",
                    1008,
                )
                return
            if receive not in done:  # the peer connection failed or closed: end the socket too
                receive.cancel()
                return
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                return
            text_frame = message.get("text")
            raw: str | bytes = text_frame if text_frame is not None else message.get("bytes", b"")
            try:
                reply = await _handle(raw, session, state, access, metrics, limits)
            except (SignalingError, RoomRefused, AccessDenied, UnknownStream) as exc:
                code, text = _error_of(exc)
                metrics.signaling_errors.labels(code).inc()
                state.errors += 1
                # A failed negotiation leaves the peer connection unusable; too many refusals look like probing.
                closing = (session.negotiation_started and not state.answered) or state.errors >= limits.max_errors
                await websocket.send_text(ErrorMessage(code=code, message=text, closing=closing).model_dump_json())
                if closing:
                    await websocket.close(code=1008)
                    return
            except Exception as exc:  # a bug of ours must still answer, and must not keep a half-built session
                log.exception("signaling message failed", extra={"error": type(exc).__name__})
                metrics.signaling_errors.labels("internal_error").inc()
                await _refuse(
                    websocket, "internal_error", "the server could not handle this message; open a new socket", 1011
                )
                return
            else:
                await websocket.send_text(reply)
    except WebSocketDisconnect:
        return
    finally:
        closed.cancel()


async def _handle(
    raw: str | bytes,
    session: PeerSession,
    state: _SocketState,
    access: StreamAccess,
    metrics: StreamMetrics,
    limits: SocketLimits,
) -> str:
    request = parse_client_message(raw, limits.max_message_bytes)
    if isinstance(request, AuthRequest):
        try:
            state.principal = await access.authenticate(request.token)
        except AccessDenied as exc:
            metrics.access_refused.labels("socket", exc.code).inc()
            raise
        p = state.principal
        return AuthenticatedMessage(role=p.role, may_watch=p.may_watch, may_publish=p.may_publish).model_dump_json()
    if isinstance(request, JoinRequest):  # the room's own grant decides
        reply = await session.join(request.room_id, request.credential, request.sdp)
    else:
        _require(state.principal, request, metrics)
        if isinstance(request, PublishRequest):
            reply = await session.publish(request.sdp, request.label)
        else:
            reply = await session.watch(request.stream_id, request.sdp, video=request.video)
    state.answered = True
    return reply.model_dump_json()


def _require(principal: Principal | None, request: PublishRequest | WatchRequest, metrics: StreamMetrics) -> None:
    if principal is None:
        metrics.access_refused.labels("socket", "not_authenticated").inc()
        raise AccessDenied(
            "not_authenticated",
            'sign in first: send {"type": "auth", "token": ...} or open the socket with the session cookie',
        )
    allowed = principal.may_publish if isinstance(request, PublishRequest) else principal.may_watch
    if not allowed:
        metrics.access_refused.labels("socket", "forbidden").inc()
        what = "publish a camera" if isinstance(request, PublishRequest) else "watch streams"
        raise AccessDenied("forbidden", f"your role ({principal.role}) may not {what}")


def _error_of(exc: SignalingError | RoomRefused | AccessDenied | UnknownStream) -> tuple[str, str]:
    if isinstance(exc, UnknownStream):
        return "unknown_stream", str(exc)
    return exc.code, exc.message


_FORBIDDEN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>scopecast · not for this account</title>
<link rel="stylesheet" href="/static/scopecast.css"></head><body class="index"><h1>Not available to this account</h1>
<p>This page shows theatre and camera streams; it is for surgeons, GPs and administrators. You are signed in as {role}.</p>
<p><a href="/">Back</a></p></body></html>"""
