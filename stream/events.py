"""Versioned messages the server sends on the data channel and signaling socket.

Every event is a pydantic model so it is validated on the way out, can be
parsed back by clients and tests, and has a JSON Schema served by the API.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Final, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from perception.findings import FrameFindings
from perception.vlm.clinical_words import confidence_word, finding_name, where_words
from perception.vlm.geometry import area_fraction

SchemaVersion = Literal["1.0"]
SCHEMA_VERSION: Final[SchemaVersion] = "1.0"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRef(_Event):
    name: str
    version: str


class ObjectEvent(_Event):
    label: str = Field(min_length=1, max_length=64)
    score: float = Field(ge=0.0, le=1.0)
    box: tuple[int, int, int, int] = Field(description="x0, y0, x1, y1 in pixels of the frame the model saw")
    outline: list[list[tuple[int, int]]] = Field(
        default_factory=list, description="mask outline: closed polygons of (x, y) points"
    )
    track_id: int | None = None
    area_px: int = Field(default=0, ge=0)
    # The same words the overlay draws and the grounded answers use (perception.vlm.clinical_words).
    name: str = Field(default="", description="short stable name as drawn on the video, e.g. 'polyp 3'")
    frame_share: float = Field(default=0.0, ge=0.0, le=1.0, description="share of the frame the object covers")
    where: str = Field(default="", description="place in the frame: 'upper left', 'centre', ...")
    confidence: str = Field(default="", description="the model's score in words: high, moderate or low")


class ContentEvent(_Event):
    """The model's content gate on this frame: whether it looks like what the model was trained on."""

    content: str = Field(description="what the model knows, in words: 'colonoscopy', 'a wound photo'")
    in_domain: bool | None = Field(description="null: this model cannot tell (see reason)")
    distance: float | None = None
    threshold: float | None = None
    reason: str = ""


class FindingsEvent(_Event):
    """The findings of one processed frame (none while the content gate withholds them)."""

    type: Literal["findings"] = "findings"
    schema_version: SchemaVersion = SCHEMA_VERSION
    stream_id: str
    frame_seq: int = Field(ge=1, description="index of the frame in its stream, from 1")
    frame_pts: int | None = Field(default=None, description="presentation timestamp of the source frame")
    capture_time: float = Field(description="unix time (s) at which the server received the frame")
    model: ModelRef
    inference_ms: float = Field(ge=0.0)
    frame_size: tuple[int, int] = Field(description="width, height of the frame the model saw")
    objects: list[ObjectEvent]
    content: ContentEvent | None = None


class StatusEvent(_Event):
    """Whether AI is available on a stream, and if not, why."""

    type: Literal["status"] = "status"
    schema_version: SchemaVersion = SCHEMA_VERSION
    stream_id: str
    ai_available: bool
    state: Literal["live", "content", "down"] = Field(
        default="live",
        description="live: findings shown (green); content: the content is not what the model knows, "
        "findings withheld (amber); down: no AI (red)",
    )
    reason: str = ""
    time: float = Field(description="unix time (s) of the change")


class VlmRef(_Event):
    name: str
    version: str
    backend: str


class AnswerEvent(_Event):
    """A piece of a streamed answer (`done` false), or the end of it with the whole text (`done` true)."""

    type: Literal["answer"] = "answer"
    schema_version: SchemaVersion = SCHEMA_VERSION
    request_id: str
    delta: str = ""
    done: bool = False
    text: str | None = Field(default=None, description="the whole answer, on the final event only")
    frame_seq: int | None = Field(default=None, description="the frame the answer is about")
    model: VlmRef | None = None


class ErrorEvent(_Event):
    """A request on the data channel was refused or failed; the video is unaffected."""

    type: Literal["error"] = "error"
    schema_version: SchemaVersion = SCHEMA_VERSION
    code: str
    message: str
    request_id: str | None = None


RoomEventKind = Literal["joined", "peer_joined", "peer_left", "replaced", "ended"]


class RoomEvent(_Event):
    """Who is in a consult room. Sent to each participant when they join and whenever the other side comes or goes."""

    type: Literal["room"] = "room"
    schema_version: SchemaVersion = SCHEMA_VERSION
    room_id: str
    event: RoomEventKind = Field(
        description="joined: you are in; replaced: you joined again elsewhere, this connection ends; ended: the "
        "clinician closed the consult"
    )
    side: Literal["clinician", "patient"] = Field(description="your side of the call")
    peer_present: bool = Field(description="whether the other side is connected now")


class ViewEvent(_Event):
    """The overlay this viewer now receives, after a `view` request: off (plain video) or on at an opacity."""

    type: Literal["view"] = "view"
    schema_version: SchemaVersion = SCHEMA_VERSION
    overlay: bool
    opacity: float = Field(ge=0.0, le=1.0)


class RecordingEvent(_Event):
    """The stream's recording light: started, stopped, or ended early (disk full, consent withdrawn) with why."""

    type: Literal["recording"] = "recording"
    schema_version: SchemaVersion = SCHEMA_VERSION
    stream_id: str
    state: Literal["recording", "stopped", "failed"]
    recording_id: int
    case_id: int
    reason: str = Field(default="", description="why it ended early; empty for a clean stop")
    time: float = Field(description="unix time (s) of the change")


AnyServerEvent = FindingsEvent | StatusEvent | AnswerEvent | ErrorEvent | RoomEvent | ViewEvent | RecordingEvent
ServerEvent = Annotated[
    Union[FindingsEvent, StatusEvent, AnswerEvent, ErrorEvent, RoomEvent, ViewEvent, RecordingEvent],
    Field(discriminator="type"),
]
SERVER_EVENT_ADAPTER: TypeAdapter[AnyServerEvent] = TypeAdapter(ServerEvent)


def findings_event(
    stream_id: str, frame_seq: int, frame_pts: int | None, capture_time: float, findings: FrameFindings
) -> FindingsEvent:
    return FindingsEvent(
        stream_id=stream_id,
        frame_seq=frame_seq,
        frame_pts=frame_pts,
        capture_time=capture_time,
        model=ModelRef(name=findings.model.name, version=findings.model.version),
        inference_ms=round(findings.inference_ms, 2),
        frame_size=findings.frame_size,
        objects=[
            ObjectEvent(
                label=o.label,
                score=round(min(1.0, max(0.0, o.score)), 4),
                box=o.box,
                outline=[list(poly) for poly in o.outline],
                track_id=o.track_id,
                name=finding_name(o),
                frame_share=round(min(1.0, area_fraction(o, findings.frame_size)), 4),
                where=where_words(o, findings),
                confidence=confidence_word(o.score),
                area_px=o.area_px,
            )
            for o in findings.objects
        ],
        content=_content_event(findings),
    )


def _content_event(findings: FrameFindings) -> ContentEvent | None:
    c = findings.content
    if c is None:
        return None
    distance = round(c.distance, 2) if c.distance is not None and math.isfinite(c.distance) else None
    return ContentEvent(
        content=c.content,
        in_domain=c.in_domain,
        distance=distance,
        threshold=None if c.threshold is None else round(c.threshold, 2),
        reason=c.reason,
    )


def parse_server_event(data: str | bytes) -> AnyServerEvent:
    """Parse and validate one event; raises pydantic.ValidationError naming the bad field."""
    return SERVER_EVENT_ADAPTER.validate_json(data)


def server_event_schema() -> dict[str, Any]:
    return SERVER_EVENT_ADAPTER.json_schema()
