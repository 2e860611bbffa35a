"""Consult rooms: a clinician and a patient in one call through the server.

Each participant publishes their camera into a private pipeline and receives
the other side's video on the same peer connection. The patient's pipeline runs
the room's model, and its overlay and findings go to the clinician only; the
clinician's pipeline is plain video, so the patient sees the clinician plainly.
Who may take which side of which room is decided by an authorizer that the
composition root passes in: consult records live in telehealth, which the
streaming spine does not import.

One seat per side: joining again (a reload, a new network, another device)
takes the seat over and closes the old connection, which is how reconnect works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import av
import cv2
from aiortc.mediastreams import MediaStreamTrack

from stream.events import RoomEvent, RoomEventKind
from stream.frames import frame_to_array
from stream.hub import StreamEntry, StreamHub
from stream.metrics import StreamMetrics
from stream.room_audio import AudioTap, RoomAudioTrack
from stream.room_view import RoomViewTrack

log = logging.getLogger(__name__)

Side = Literal["clinician", "patient"]
SIDES: tuple[Side, Side] = ("clinician", "patient")
CAPTURE_JPEG_QUALITY = 95


def other_side(side: Side) -> Side:
    return "patient" if side == "clinician" else "clinician"


@dataclass(frozen=True)
class RoomGrant:
    """Permission to take one side of one room, given by the authorizer."""

    room_id: str
    side: Side

    @property
    def ai_assist(self) -> bool:
        """Overlay, findings and questions: the clinician's side only."""
        return self.side == "clinician"


class RoomRefused(Exception):
    """A join was refused; `message` says why, for the person joining."""

    def __init__(self, message: str, code: str = "room_refused") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# (room id, credential) -> grant, or RoomRefused. The credential is whatever the composition root's authorizer
# understands (a join key from an invite link, a clinician's session token).
RoomAuthorizer = Callable[[str, str], Awaitable[RoomGrant]]


class RoomMember(Protocol):
    """What a room needs from a participant's session."""

    def send_event(self, message: str) -> None: ...

    def peer_stream_changed(self, entry: StreamEntry | None) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Seat:
    member: RoomMember
    entry: StreamEntry
    microphone: AudioTap | None = None

    async def release(self, hub: StreamHub) -> None:
        if self.microphone is not None:
            await self.microphone.close()
        await hub.remove_stream(self.entry.stream_id)


@dataclass(frozen=True)
class RoomMedia:
    """What a participant receives: the other side's video (or a card), and its sound (or silence)."""

    video: RoomViewTrack
    audio: RoomAudioTrack


@dataclass
class Room:
    room_id: str
    seats: dict[Side, Seat] = field(default_factory=dict)

    def stream_of(self, side: Side) -> StreamEntry | None:
        seat = self.seats.get(side)
        return seat.entry if seat is not None else None

    def microphone_of(self, side: Side) -> AudioTap | None:
        seat = self.seats.get(side)
        return seat.microphone if seat is not None else None

    def event(self, side: Side, kind: RoomEventKind) -> str:
        present = other_side(side) in self.seats
        return RoomEvent(room_id=self.room_id, event=kind, side=side, peer_present=present).model_dump_json()


class ConsultRooms:
    """The live rooms. `model_name` runs on the patient's video; `authorize` decides who joins (None: rooms off)."""

    def __init__(
        self, hub: StreamHub, metrics: StreamMetrics, model_name: str | None, authorize: RoomAuthorizer | None
    ) -> None:
        self._hub = hub
        self._metrics = metrics
        self._model_name = model_name
        self._authorize = authorize
        self._rooms: dict[str, Room] = {}
        self._lock = asyncio.Lock()  # seats change one join or leave at a time

    async def authorize(self, room_id: str, credential: str) -> RoomGrant:
        if self._authorize is None:
            raise RoomRefused("consult rooms are not enabled on this server", "rooms_disabled")
        grant = await self._authorize(room_id, credential)
        if grant.room_id != room_id:
            raise RoomRefused("the grant is for another room")
        return grant

    async def take_seat(
        self, grant: RoomGrant, member: RoomMember, camera: MediaStreamTrack, microphone: MediaStreamTrack | None = None
    ) -> tuple[StreamEntry, RoomMedia]:
        """Seat `member` on its side (closing whoever held it), start its stream, and return what it receives."""
        async with self._lock:
            room = self._rooms.setdefault(grant.room_id, Room(grant.room_id))
            previous = room.seats.pop(grant.side, None)
            if previous is not None:
                previous.member.send_event(room.event(grant.side, "replaced"))
                log.info("room seat taken over", extra={"room": grant.room_id, "side": grant.side})
            patient = grant.side == "patient"
            entry = self._hub.add_camera_stream(
                camera,
                grant.side,
                model_name=self._model_name if patient else None,
                annotate=patient and self._model_name is not None,
                private=True,
            )
            room.seats[grant.side] = Seat(member, entry, AudioTap(microphone) if microphone is not None else None)
        if previous is not None:
            await previous.member.close()
            await previous.release(self._hub)
        peer = other_side(grant.side)
        waiting = "Waiting for the patient to join" if peer == "patient" else "Waiting for the clinician to join"
        media = RoomMedia(
            RoomViewTrack(
                lambda: room.stream_of(peer), waiting, self._metrics, self._hub.draw_executor, draw=grant.ai_assist
            ),
            RoomAudioTrack(lambda: room.microphone_of(peer)),
        )
        member.peer_stream_changed(room.stream_of(peer))
        other = room.seats.get(peer)
        if other is not None:
            other.member.peer_stream_changed(entry)
            other.member.send_event(room.event(peer, "peer_joined"))
        log.info("room joined", extra={"room": grant.room_id, "side": grant.side, "stream": entry.stream_id})
        return entry, media

    def joined_event(self, grant: RoomGrant) -> str:
        """The `joined` event for a member whose data channel just opened."""
        room = self._rooms.get(grant.room_id) or Room(grant.room_id)
        return room.event(grant.side, "joined")

    def peer_stream(self, grant: RoomGrant) -> StreamEntry | None:
        room = self._rooms.get(grant.room_id)
        return room.stream_of(other_side(grant.side)) if room is not None else None

    async def leave(self, grant: RoomGrant, member: RoomMember) -> None:
        """Free the member's seat (if it still holds it) and tell the other side."""
        async with self._lock:
            room = self._rooms.get(grant.room_id)
            seat = room.seats.get(grant.side) if room is not None else None
            if room is None or seat is None or seat.member is not member:
                return  # already replaced by a newer connection, or the room was closed
            del room.seats[grant.side]
            if not room.seats:
                del self._rooms[grant.room_id]
        await seat.release(self._hub)
        other = room.seats.get(other_side(grant.side))
        if other is not None:
            other.member.peer_stream_changed(None)
            other.member.send_event(room.event(other_side(grant.side), "peer_left"))
        log.info("room left", extra={"room": grant.room_id, "side": grant.side})

    async def close_room(self, room_id: str) -> None:
        """End a consult: both participants are told and disconnected."""
        async with self._lock:
            room = self._rooms.pop(room_id, None)
        if room is None:
            return
        for side, seat in list(room.seats.items()):
            seat.member.send_event(room.event(side, "ended"))
        await asyncio.sleep(0.2)  # let the `ended` events leave before the connections close
        for seat in list(room.seats.values()):
            await seat.member.close()
            await seat.release(self._hub)
        log.info("room closed", extra={"room": room_id})

    def presence(self, room_id: str) -> dict[str, bool]:
        room = self._rooms.get(room_id)
        return {side: room is not None and side in room.seats for side in SIDES}

    def tell_room(self, room_id: str, message: str) -> None:
        """Send an event to everyone in the room (both sides must know when the call is recorded)."""
        room = self._rooms.get(room_id)
        if room is not None:
            for seat in room.seats.values():
                seat.member.send_event(message)

    def patient_media(self, room_id: str) -> tuple[StreamEntry | None, AudioTap | None]:
        """The patient's stream and microphone in a room now (None where absent), for a consult recording."""
        room = self._rooms.get(room_id)
        if room is None:
            return None, None
        return room.stream_of("patient"), room.microphone_of("patient")

    async def capture_patient_jpeg(self, room_id: str) -> bytes | None:
        """The patient's newest frame as a JPEG, without the overlay (the photo is evidence, not a drawing);
        None when the patient is not connected or has sent no frame yet."""
        room = self._rooms.get(room_id)
        entry = room.stream_of("patient") if room is not None else None
        latest = entry.pipeline.frames.latest if entry is not None else None
        if latest is None:
            return None
        return await asyncio.get_running_loop().run_in_executor(None, _encode_jpeg, latest.frame)

    async def close(self) -> None:
        for room_id in list(self._rooms):
            await self.close_room(room_id)


def _encode_jpeg(frame: av.VideoFrame) -> bytes:
    ok, data = cv2.imencode(".jpg", frame_to_array(frame, "bgr24"), [cv2.IMWRITE_JPEG_QUALITY, CAPTURE_JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding of the captured frame failed")
    return data.tobytes()
