"""One WebRTC peer session: a publisher (camera in, annotated video back), a watcher, or a consult-room participant."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from perception.vlm.base import VlmBackend
from stream.dialogue import SessionDialogue, ViewMessage, parse_channel_message
from stream.events import ErrorEvent, ViewEvent
from stream.hub import StreamEntry, StreamHub, UnknownStream
from stream.metrics import StreamMetrics
from stream.rooms import ConsultRooms, RoomGrant, RoomMedia
from stream.signaling import AnswerMessage, SignalingError, check_offer_sdp
from stream.switchable import SwitchableTrack
from stream.turn import IceServer

log = logging.getLogger(__name__)

# A viewer that cannot keep up with findings events gets fewer of them rather than
# an ever-growing SCTP buffer.
_MAX_CHANNEL_BUFFER = 1 << 20
# Overlay opacities a viewer can pick: each level in use is one more shared drawing per frame, so keep few.
OPACITY_LEVELS = (0.25, 0.5, 0.75, 1.0)


def snap_opacity(opacity: float) -> float:
    return min(OPACITY_LEVELS, key=lambda level: abs(level - opacity))


class PeerSession:
    """Owns one RTCPeerConnection and everything it subscribed to; `close()` releases all of it."""

    def __init__(
        self,
        hub: StreamHub,
        metrics: StreamMetrics,
        video_codec: str = "auto",
        vlm: VlmBackend | None = None,
        ice_servers: list[IceServer] | None = None,
        rooms: ConsultRooms | None = None,
    ) -> None:
        self._hub = hub
        self._rooms = rooms
        self._grant: RoomGrant | None = None
        self._room_stream: StreamEntry | None = None  # this participant's own (private) camera stream
        self._peer_entry: StreamEntry | None = None  # the other participant's stream, while connected
        self._room_media: RoomMedia | None = None
        self._metrics = metrics
        self._video_codec = video_codec
        servers = [RTCIceServer(**server) for server in ice_servers or []]
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=servers) if servers else None)
        self._role = "none"
        self.negotiation_started = False  # an offer reached aiortc: a failure after this leaves the connection unusable
        self._published: StreamEntry | None = None
        self._watched: tuple[str, MediaStreamTrack] | None = None
        self._questions_for: str | None = None  # a questions-only watch of this stream (its video comes from Janus)
        self._video: SwitchableTrack | None = None  # what this viewer's video sender reads
        self._channel: RTCDataChannel | None = None
        self._unsubscribe_events: Callable[[], None] | None = None
        self._closed = asyncio.Event()
        self._pending_tracks: list[MediaStreamTrack] = []
        self._pending_audio: list[MediaStreamTrack] = []
        self._dialogue = (
            SessionDialogue(vlm, self._lookup_stream, lambda: self._events_source_id, self.send_event)
            if vlm is not None
            else None
        )

        @self._pc.on("connectionstatechange")
        async def on_state() -> None:
            if self._pc.connectionState in ("failed", "closed"):
                await self.close()

        @self._pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._pending_tracks.append(track)
            elif track.kind == "audio":
                self._pending_audio.append(track)

        @self._pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            self._channel = channel
            channel.on("message", self._on_channel_message)
            if self._grant is not None and self._rooms is not None:
                self.send_event(self._rooms.joined_event(self._grant))
            self._subscribe_events()

    @property
    def closed(self) -> asyncio.Event:
        return self._closed

    @property
    def stream_id(self) -> str | None:
        if self._published is not None:
            return self._published.stream_id
        if self._room_stream is not None:
            return self._room_stream.stream_id
        if self._watched:
            return self._watched[0]
        return self._questions_for

    @property
    def _events_source(self) -> StreamEntry | None:
        """The stream whose findings this session receives and asks about."""
        if self._grant is not None:
            return self._peer_entry if self._grant.ai_assist else None
        if self._questions_for is not None:
            return self._hub.get(self._questions_for)
        return self._hub.get(self._watched[0]) if self._watched is not None else None

    @property
    def _events_source_id(self) -> str | None:
        source = self._events_source
        return source.stream_id if source is not None else None

    def _lookup_stream(self, stream_id: str) -> StreamEntry:
        """Public streams, plus the room stream this session is entitled to see."""
        peer = self._peer_entry
        if peer is not None and self._grant is not None and self._grant.ai_assist and stream_id == peer.stream_id:
            return peer
        return self._hub.get(stream_id)

    async def publish(self, offer_sdp: str, label: str | None) -> AnswerMessage:
        """Take the peer's camera as a new stream and send its annotated copy back."""
        await self._apply_offer(offer_sdp)
        if not self._pending_tracks:
            raise SignalingError("invalid_sdp", "publish offer has no sending video track")
        self._role = "publisher"
        self._published = self._hub.add_camera_stream(self._pending_tracks[0], label)
        self._watch_entry(self._published)
        return await self._answer(self._published.stream_id)

    async def watch(self, stream_id: str, offer_sdp: str, *, video: bool = True) -> AnswerMessage:
        """Watch a stream; `video=False`: questions and answers only (the page gets video and findings from Janus,
        so this connection carries no encode and no findings)."""
        entry = self._hub.get(stream_id)  # UnknownStream before touching the peer connection
        await self._apply_offer(offer_sdp)
        if video:
            self._role = "watcher"
            self._watch_entry(entry)
        else:
            self._role = "questions"
            self._questions_for = entry.stream_id
        return await self._answer(stream_id)

    async def join(self, room_id: str, credential: str, offer_sdp: str) -> AnswerMessage:
        """Take one side of a consult room: this peer's camera goes to the other side, the other side's video comes back."""
        if self._rooms is None:
            raise SignalingError("rooms_disabled", "consult rooms are not enabled on this server")
        if self._pc.remoteDescription is not None:
            raise SignalingError("already_negotiated", "this session already has an offer; open a new socket")
        grant = await self._rooms.authorize(room_id, credential)  # RoomRefused before touching the peer connection
        await self._apply_offer(offer_sdp)
        if not self._pending_tracks:
            raise SignalingError("invalid_sdp", "join offer has no sending video track: allow the camera and try again")
        self._grant = grant
        self._role = f"room-{grant.side}"
        self._metrics.sessions.labels(self._role).inc()  # from here close() leaves the seat and counts it down
        microphone = self._pending_audio[0] if self._pending_audio else None
        self._room_stream, self._room_media = await self._rooms.take_seat(
            grant, self, self._pending_tracks[0], microphone
        )
        self._prefer_codec(self._pc.addTrack(self._room_media.video))
        if any(t.kind == "audio" for t in self._pc.getTransceivers()):  # only when the offer has an audio section
            self._pc.addTrack(self._room_media.audio)
        return await self._answer(self._room_stream.stream_id)

    def peer_stream_changed(self, entry: StreamEntry | None) -> None:
        """The room says the other side's stream changed (joined, reconnected, left): follow its findings."""
        self._peer_entry = entry
        if self._unsubscribe_events is not None:
            self._unsubscribe_events()
            self._unsubscribe_events = None
        self._subscribe_events()

    def _watch_entry(self, entry: StreamEntry) -> None:
        track = self._hub.subscribe(entry.stream_id)
        self._watched = (entry.stream_id, track)
        self._video = SwitchableTrack(track)  # the viewer may switch the overlay off or on later
        sender = self._pc.addTrack(self._video)
        self._prefer_codec(sender)
        self._metrics.sessions.labels(self._role).inc()
        self._subscribe_events()

    async def _apply_offer(self, offer_sdp: str) -> None:
        if self._pc.remoteDescription is not None:
            raise SignalingError("already_negotiated", "this session already has an offer; open a new socket")
        check_offer_sdp(offer_sdp)
        self.negotiation_started = True
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError, ... for SDP it cannot use
            # Its exception text is for us, not for the client: log it, answer in words.
            log.warning("offer refused by aiortc", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            raise SignalingError(
                "invalid_sdp",
                "SDP offer refused: the media sections could not be negotiated (check codecs, mids and ICE/DTLS attributes)",
            ) from None

    async def _answer(self, stream_id: str) -> AnswerMessage:
        try:
            answer = await self._pc.createAnswer()
            await self._pc.setLocalDescription(answer)
        except Exception as exc:
            log.warning("answer failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            raise SignalingError(
                "negotiation_failed", "the server could not answer this offer; open a new socket and send a fresh offer"
            ) from None
        return AnswerMessage(sdp=self._pc.localDescription.sdp, stream_id=stream_id)

    def _prefer_codec(self, sender: RTCRtpSender) -> None:
        if self._video_codec == "auto":
            return
        wanted = f"video/{self._video_codec}".lower()
        codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == wanted]
        for transceiver in self._pc.getTransceivers():
            if transceiver.sender is sender and codecs:
                transceiver.setCodecPreferences(codecs)

    def _subscribe_events(self) -> None:
        # Both the data channel and the stream must exist; whichever comes second subscribes.
        if self._channel is None or self._unsubscribe_events is not None or self._questions_for is not None:
            return
        try:
            entry = self._events_source
        except UnknownStream:
            return
        if entry is not None:
            self._unsubscribe_events = entry.pipeline.add_listener(self.send_event)

    def send_event(self, message: str) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            return
        if channel.bufferedAmount > _MAX_CHANNEL_BUFFER:
            return
        channel.send(message)

    def _on_channel_message(self, raw: str | bytes) -> None:
        if self._grant is not None and not self._grant.ai_assist:
            self._send_error("not_allowed", "questions are for the clinician")
            return
        try:
            message = parse_channel_message(raw)
        except SignalingError as exc:
            self._send_error(exc.code, exc.message)
            return
        if isinstance(message, ViewMessage):
            self._set_view(message)
        elif self._dialogue is not None:
            self._dialogue.handle(message)
        else:
            self._send_error("no_vlm", "questions are not enabled on this server", getattr(message, "request_id", None))

    def _set_view(self, view: ViewMessage) -> None:
        """Switch this viewer to the output drawn at the asked opacity (0: plain video): no renegotiation, one encode.
        In a consult room the clinician's view has findings drawn or not (no opacity steps there)."""
        if self._room_media is not None and self._grant is not None and self._grant.ai_assist:
            self._room_media.video.set_draw(view.overlay)
            drawn = self._room_media.video.draws
            self.send_event(ViewEvent(overlay=drawn, opacity=1.0 if drawn else 0.0).model_dump_json())
            return
        if self._watched is None or self._video is None:
            self._send_error("not_watching", "the overlay can be changed on watched streams only")
            return
        level = snap_opacity(view.opacity) if view.overlay else 0.0
        stream_id, old = self._watched
        try:
            new = self._hub.subscribe(stream_id, level)
        except UnknownStream as exc:
            self._send_error("unknown_stream", str(exc))
            return
        self._video.switch(new)
        self._hub.unsubscribe(stream_id, old)
        self._watched = (stream_id, new)
        self.send_event(ViewEvent(overlay=level > 0, opacity=level).model_dump_json())

    def _send_error(self, code: str, message: str, request_id: str | None = None) -> None:
        self.send_event(ErrorEvent(code=code, message=message, request_id=request_id).model_dump_json())

    async def close(self) -> None:
        """Release everything this session took. Never raises: each step is attempted whatever the others did, so a
        half-negotiated or broken session still gives back its stream, tracks, tasks and peer connection."""
        if self._closed.is_set():
            return
        self._closed.set()
        steps: list[tuple[str, Callable[[], Awaitable[None] | None]]] = [
            ("dialogue", self._dialogue.close if self._dialogue is not None else _nothing),
            ("events", self._unsubscribe_events or _nothing),
            ("room seat", self._leave_room),
            ("watched stream", self._stop_watching),
            ("received tracks", self._stop_received_tracks),
            ("peer connection", self._pc.close),
            ("published stream", self._remove_published),
        ]
        for what, step in steps:
            try:
                result = step()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # keep releasing the rest; the log says what failed
                log.warning(
                    "session cleanup step failed", extra={"step": what, "error": f"{type(exc).__name__}: {exc}"[:300]}
                )
        log.info("session closed", extra={"role": self._role, "stream": self.stream_id})

    async def _leave_room(self) -> None:
        if self._grant is not None and self._rooms is not None:
            self._metrics.sessions.labels(self._role).dec()
            await self._rooms.leave(self._grant, self)

    def _stop_watching(self) -> None:
        if self._video is not None:
            self._video.stop()
        if self._watched is not None:
            stream_id, track = self._watched
            self._hub.unsubscribe(stream_id, track)
            self._metrics.sessions.labels(self._role).dec()

    def _stop_received_tracks(self) -> None:
        for track in (*self._pending_tracks, *self._pending_audio):
            track.stop()
        if self._room_media is not None:
            self._room_media.video.stop()
            self._room_media.audio.stop()

    async def _remove_published(self) -> None:
        if self._published is not None:
            await self._hub.remove_stream(self._published.stream_id)


def _nothing() -> None:
    return None
