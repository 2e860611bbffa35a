"""HTTP and WebSocket routes of the streaming spine: signaling, stream list, event schema, pages."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import APIRouter, HTTPException, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from fastapi.responses import FileResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from perception.vlm.base import Turn, VlmBackend, VlmError
from stream.dialogue import ask_backend, snapshot, vlm_error_code
from stream.events import server_event_schema
from stream.hub import StreamHub, TooManySessions, UnknownStream
from stream.metrics import StreamMetrics
from stream.rooms import ConsultRooms, RoomRefused
from stream.session import PeerSession
from stream.signaling import ErrorMessage, JoinRequest, PublishRequest, SignalingError, parse_client_message

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


class TurnBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=2000)
    answer: str = Field(max_length=20_000)


class AskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="plain text, at most 2,000 characters")
    frame_seq: int | None = Field(default=None, ge=1)
    history: list[TurnBody] = Field(default_factory=list, max_length=6)


def streaming_router(
    hub: StreamHub,
    metrics: StreamMetrics,
    *,
    max_message_bytes: int,
    video_codec: str = "auto",
    vlm: VlmBackend | None = None,
    ice_servers: list[dict[str, str]] | None = None,
    rooms: ConsultRooms | None = None,
) -> APIRouter:
    """`ice_servers` are RTCIceServer dicts (urls, username, credential), given to both ends of each call;
    `rooms` enables `join` (consult rooms)."""
    router = APIRouter()

    @router.get("/api/ice-servers")
    async def ice_server_list() -> list[dict[str, str]]:
        """STUN/TURN servers the browser should use; same as the server's own."""
        return ice_servers or []

    @router.get("/monitor", include_in_schema=False)
    async def monitor_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "monitor.html")

    @router.get("/capture", include_in_schema=False)
    async def capture_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "capture.html")

    @router.get("/api/streams")
    async def list_streams() -> list[dict]:
        return [
            {
                "stream_id": e.stream_id,
                "kind": e.kind,
                "label": e.label,
                "model": e.model_name,
                "viewers": e.pipeline.viewers,
                "ai_available": e.pipeline.status.available,
                "ai_reason": e.pipeline.status.reason,
                "size": list(e.size) if e.size else None,
            }
            for e in hub.streams()
        ]

    @router.get("/api/streams/{stream_id}")
    async def stream_detail(stream_id: str) -> dict:
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
            "ai_reason": entry.pipeline.status.reason,
            "last_frame_seq": entry.pipeline.frames.seq,
            "last_result_seq": result.seq if result else None,
            "last_inference_ms": round(result.findings.inference_ms, 2) if result else None,
            "objects": len(result.findings.objects) if result else 0,
        }

    @router.post("/api/streams/{stream_id}/ask")
    async def ask(stream_id: str, body: AskBody) -> dict:
        """Ask the VLM about a stream's newest analysed frame (or a recent `frame_seq`); returns the whole answer."""
        if vlm is None:
            raise HTTPException(503, "questions are not enabled on this server")
        try:
            result = await snapshot(hub.get, stream_id, body.frame_seq)
            _request, pieces = await ask_backend(vlm, result, body.question, tuple(Turn(t.question, t.answer) for t in body.history))
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
    async def events_schema() -> dict:
        """JSON Schema of every event sent on the data channel (findings and status)."""
        return server_event_schema()

    @router.websocket("/ws")
    async def signaling(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            hub.open_session()
        except TooManySessions as exc:
            metrics.signaling_errors.labels("too_many_sessions").inc()
            await websocket.send_text(ErrorMessage(code="too_many_sessions", message=str(exc)).model_dump_json())
            await websocket.close(code=1013)
            return
        session = PeerSession(hub, metrics, video_codec, vlm, ice_servers, rooms)
        try:
            await _serve_socket(websocket, session, hub, metrics, max_message_bytes)
        finally:
            await session.close()
            hub.close_session()
            if websocket.client_state == WebSocketState.CONNECTED:
                await websocket.close()

    return router


async def _serve_socket(
    websocket: WebSocket, session: PeerSession, hub: StreamHub, metrics: StreamMetrics, max_bytes: int
) -> None:
    closed = asyncio.ensure_future(session.closed.wait())
    try:
        while True:
            receive = asyncio.ensure_future(websocket.receive())
            done, _ = await asyncio.wait({receive, closed}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:  # the peer connection failed or closed: end the socket too
                receive.cancel()
                return
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text") if message.get("text") is not None else message.get("bytes", b"")
            try:
                request = parse_client_message(raw, max_bytes)
                if isinstance(request, PublishRequest):
                    reply = await session.publish(request.sdp, request.label)
                elif isinstance(request, JoinRequest):
                    reply = await session.join(request.room_id, request.credential, request.sdp)
                else:
                    reply = await session.watch(request.stream_id, request.sdp)
                await websocket.send_text(reply.model_dump_json())
            except SignalingError as exc:
                metrics.signaling_errors.labels(exc.code).inc()
                await websocket.send_text(ErrorMessage(code=exc.code, message=exc.message).model_dump_json())
            except RoomRefused as exc:
                metrics.signaling_errors.labels(exc.code).inc()
                await websocket.send_text(ErrorMessage(code=exc.code, message=exc.message).model_dump_json())
            except UnknownStream as exc:
                metrics.signaling_errors.labels("unknown_stream").inc()
                await websocket.send_text(ErrorMessage(code="unknown_stream", message=str(exc)).model_dump_json())
    except WebSocketDisconnect:
        return
    finally:
        closed.cancel()
