"""Questions about the live frame, asked on the data channel and answered as a token stream.

A question names a stream (the session's own by default) and optionally one of
its recent frames; the server snapshots that frame with its findings, asks the
VLM backend in the background and streams `answer` events back. The video path
is untouched: the frame is converted in a worker thread and the backend runs
off the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Callable
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from perception.vlm.base import (
    AskRequest,
    InvalidImage,
    InvalidQuestion,
    Turn,
    VlmBackend,
    VlmBusy,
    VlmError,
    VlmUnavailable,
)
from stream.events import AnswerEvent, ErrorEvent, VlmRef
from stream.frames import frame_to_array
from stream.hub import StreamEntry, UnknownStream
from stream.model_results import ModelResult
from stream.signaling import STREAM_ID_PATTERN, SignalingError, parse_tagged_message

log = logging.getLogger(__name__)

HISTORY_TURNS = 6
REQUEST_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskMessage(_Msg):
    type: Literal["ask"]
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    question: str = Field(description="plain text, at most 2,000 characters")
    stream_id: str | None = Field(default=None, pattern=STREAM_ID_PATTERN)
    frame_seq: int | None = Field(default=None, ge=1, description="a recent frame; default: the newest with findings")


class CancelMessage(_Msg):
    type: Literal["cancel"]
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)


class PingMessage(_Msg):
    type: Literal["ping"]


class ViewMessage(_Msg):
    """How this viewer wants the overlay: on or off, and how opaque (the session switches its video track)."""

    type: Literal["view"]
    overlay: bool = True
    opacity: float = Field(default=1.0, ge=0.0, le=1.0)


AnyChannelMessage = AskMessage | CancelMessage | PingMessage | ViewMessage
ChannelMessage = Annotated[Union[AskMessage, CancelMessage, PingMessage, ViewMessage], Field(discriminator="type")]
_CHANNEL_ADAPTER: TypeAdapter[AnyChannelMessage] = TypeAdapter(ChannelMessage)
CHANNEL_MESSAGE_TYPES = ("ask", "cancel", "ping", "view")


def parse_channel_message(raw: str | bytes, max_bytes: int = 16 * 1024) -> AnyChannelMessage:
    """Validate one data-channel request; raises SignalingError naming the problem."""
    return parse_tagged_message(raw, _CHANNEL_ADAPTER, CHANNEL_MESSAGE_TYPES, max_bytes)


StreamLookup = Callable[[str], StreamEntry]  # a stream id to its entry, or UnknownStream (hub.get for public streams)


async def snapshot(lookup: StreamLookup, stream_id: str, frame_seq: int | None) -> ModelResult:
    """The frame (with its findings) a question is about. Raises SignalingError or UnknownStream."""
    pipeline = lookup(stream_id).pipeline
    if frame_seq is None:
        result = pipeline.latest_result
        if result is None:
            raise SignalingError("no_frame", f"stream {stream_id!r} has no analysed frame yet")
        return result
    result = pipeline.recent_result(frame_seq)
    if result is None:
        held = pipeline.recent_frame_seqs()
        span = f"{held[0]}..{held[-1]}" if held else "none"
        raise SignalingError(
            "unknown_frame", f"frame {frame_seq} is not held any more (recent frames: {span}); ask about the live frame"
        )
    return result


async def ask_backend(
    backend: VlmBackend, result: ModelResult, question: str, history: tuple[Turn, ...] = ()
) -> tuple[AskRequest, collections.abc.AsyncGenerator[str, None]]:
    """Build the request from a snapshot (conversion in a worker thread) and start the answer stream."""
    loop = asyncio.get_running_loop()
    image = await loop.run_in_executor(None, frame_to_array, result.source.frame, "rgb24")
    request = AskRequest(question=question, image=image, findings=result.findings, history=history)
    return request, backend.answer(request)


def vlm_error_code(exc: VlmError) -> str:
    if isinstance(exc, VlmBusy):
        return "vlm_busy"
    if isinstance(exc, VlmUnavailable):
        return "vlm_unavailable"
    if isinstance(exc, (InvalidQuestion, InvalidImage)):
        return "invalid_question"
    return "vlm_error"


class SessionDialogue:
    """One peer session's questions: at most one answer streaming at a time, and a bounded history."""

    def __init__(
        self,
        backend: VlmBackend,
        lookup: StreamLookup,
        default_stream: Callable[[], str | None],
        send: Callable[[str], None],
    ) -> None:
        self._backend = backend
        self._lookup = lookup
        self._default_stream = default_stream
        self._send = send
        self._history: collections.deque[Turn] = collections.deque(maxlen=HISTORY_TURNS)
        self._task: asyncio.Task[None] | None = None
        self._request_id: str | None = None

    def handle(self, message: AskMessage | CancelMessage | PingMessage) -> None:
        """One parsed request (see parse_channel_message; the session handles `view` itself)."""
        if isinstance(message, PingMessage):
            self._send(json.dumps({"type": "pong"}))
        elif isinstance(message, CancelMessage):
            if self._task is not None and self._request_id == message.request_id:
                self._task.cancel()
        elif self._task is not None and not self._task.done():
            self._error(
                "busy",
                f"an answer is still streaming (request {self._request_id}); cancel it or wait",
                message.request_id,
            )
        else:
            self._request_id = message.request_id
            self._task = asyncio.create_task(self._answer(message), name=f"ask:{message.request_id}")

    async def _answer(self, message: AskMessage) -> None:
        stream_id = message.stream_id or self._default_stream()
        rid = message.request_id
        try:
            if stream_id is None:
                raise SignalingError("no_stream", "this session has no stream; name one with stream_id")
            result = await snapshot(self._lookup, stream_id, message.frame_seq)
            _request, pieces = await ask_backend(self._backend, result, message.question, tuple(self._history))
            text = []
            try:
                async for piece in pieces:
                    text.append(piece)
                    self._send(AnswerEvent(request_id=rid, delta=piece).model_dump_json())
            finally:
                # Stops generation when we were cancelled mid-answer.
                await pieces.aclose()
            answer = "".join(text)
            self._history.append(Turn(message.question.strip(), answer))
            info = self._backend.info
            self._send(
                AnswerEvent(
                    request_id=rid,
                    done=True,
                    text=answer,
                    frame_seq=result.seq,
                    model=VlmRef(name=info.name, version=info.version, backend=info.backend),
                ).model_dump_json()
            )
        except asyncio.CancelledError:
            self._error("cancelled", "the answer was cancelled", rid)
            raise
        except SignalingError as exc:
            self._error(exc.code, exc.message, rid)
        except UnknownStream as exc:
            self._error("unknown_stream", str(exc), rid)
        except VlmError as exc:
            self._error(vlm_error_code(exc), str(exc), rid)
        except Exception as exc:  # a broken backend must not take the session down
            log.exception("vlm answer failed", extra={"stream": stream_id})
            self._error("vlm_failed", f"the VLM failed: {type(exc).__name__}: {exc}", rid)

    def _error(self, code: str, message: str, request_id: str | None) -> None:
        self._send(ErrorEvent(code=code, message=message, request_id=request_id).model_dump_json())

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
