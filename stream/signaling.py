"""Signaling messages exchanged over the WebSocket, validated before anything acts on them.

A client opens one socket per WebRTC session and sends one offer: `publish`
(send my camera, get the annotated stream back), `watch` (receive a stream) or
`join` (take one side of a consult room: send my camera, get the other side's).
ICE is not trickled: offers and answers carry all candidates, as aiortc expects.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from stream.sdp_check import SdpProblem, check_offer

T = TypeVar("T")

MAX_MESSAGE_BYTES = 64 * 1024
MAX_JSON_DEPTH = 16  # the deepest real message is 1; the parser's recursion must never be the limit
STREAM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ROOM_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


class SignalingError(Exception):
    """A client message was refused. `code` is stable for programs, `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PublishRequest(_Message):
    type: Literal["publish"]
    sdp: str = Field(min_length=10, description="SDP offer with one sending video track")
    label: str | None = Field(default=None, max_length=64, description="optional human name for the stream")


class WatchRequest(_Message):
    type: Literal["watch"]
    stream_id: str = Field(pattern=STREAM_ID_PATTERN)
    sdp: str = Field(min_length=10, description="SDP offer with one receive-only video transceiver")
    video: bool = Field(
        True,
        description="false: no video on this connection, only the data channel for questions and answers (a page "
        "that receives the video and findings from Janus); the video section is answered inactive",
    )


class JoinRequest(_Message):
    type: Literal["join"]
    room_id: str = Field(pattern=ROOM_ID_PATTERN)
    credential: str = Field(
        min_length=8, max_length=2048, description="the join key from the invite link, or a clinician's session token"
    )
    sdp: str = Field(min_length=10, description="SDP offer with one sendrecv video transceiver carrying the camera")


class AuthRequest(_Message):
    """Sign the socket in with a session token (from /api/login); browsers may rely on the session cookie instead."""

    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=4096)


AnyClientMessage = AuthRequest | PublishRequest | WatchRequest | JoinRequest
ClientMessage = Annotated[Union[AuthRequest, PublishRequest, WatchRequest, JoinRequest], Field(discriminator="type")]
_CLIENT_ADAPTER: TypeAdapter[AnyClientMessage] = TypeAdapter(ClientMessage)
CLIENT_MESSAGE_TYPES = ("auth", "publish", "watch", "join")


class AuthenticatedMessage(_Message):
    type: Literal["authenticated"] = "authenticated"
    role: str
    may_watch: bool
    may_publish: bool


class AnswerMessage(_Message):
    type: Literal["answer"] = "answer"
    sdp: str
    stream_id: str


class ErrorMessage(_Message):
    type: Literal["error"] = "error"
    code: str
    message: str
    closing: bool = Field(False, description="the server closes this socket after this error: open a new one to retry")


def parse_client_message(raw: str | bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> AnyClientMessage:
    """Validate one signaling message; raises SignalingError saying exactly what was wrong."""
    return parse_tagged_message(raw, _CLIENT_ADAPTER, CLIENT_MESSAGE_TYPES, max_bytes)


def parse_tagged_message(raw: str | bytes, adapter: TypeAdapter[T], types: tuple[str, ...], max_bytes: int) -> T:
    """Size, JSON, known `type`, then the model's own validation: each failure named precisely."""
    size = len(raw.encode(errors="surrogatepass") if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise SignalingError("message_too_large", f"message is {size} bytes; the limit is {max_bytes} bytes")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SignalingError("malformed_json", "message is not UTF-8 text") from None
    depth = json_nesting_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise SignalingError("message_too_deep", f"message nests {depth} levels deep; the limit is {MAX_JSON_DEPTH}")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SignalingError("malformed_json", f"message is not valid JSON: {exc.msg} at character {exc.pos}") from None
    except (RecursionError, ValueError):  # unreachable after the depth check; never let the parser close the socket
        raise SignalingError("malformed_json", "message is not valid JSON") from None
    if not isinstance(data, dict):
        raise SignalingError("malformed_message", "message must be a JSON object")
    kind = data.get("type")
    if kind not in types:
        raise SignalingError("unknown_type", f"unknown message type {kind!r}; expected one of: {', '.join(types)}")
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise SignalingError("invalid_message", f"invalid {kind} message: {_describe(exc)}") from None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_nesting_depth(text: str) -> int:
    """How deep arrays and objects nest, found without parsing (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_offer_sdp(sdp: str) -> None:
    """Structural checks before handing SDP to aiortc (stream.sdp_check), as a signaling error naming the problem."""
    try:
        check_offer(sdp)
    except SdpProblem as exc:
        raise SignalingError("invalid_sdp", f"SDP offer refused: {exc}") from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
