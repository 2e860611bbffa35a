"""Publish one annotated stream into its own Janus VideoRoom, once, for every Janus viewer.

The room is created by scopecast (with a secret, at most one publisher: the room is full for anyone else) and the
burned-in video is sent by one aiortc peer connection, so the server encodes each stream once however many watch.
Findings, status and answers go on the same peer's data channel: the VideoRoom relays a publisher's data to every
subscriber, so Janus viewers get the very events (same schema) direct viewers get on their own channel, and
scopecast sends each one once.

When Janus goes away (restart, crash) or the room vanishes, the publisher tears its peer down and tries again with a
growing pause; `state` says what is happening in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from stream.janus.client import HandleEvent, JanusHandle, open_session
from stream.janus.errors import VIDEOROOM_ROOM_EXISTS, JanusError, JanusRequestFailed
from stream.turn import IceServer

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
_MAX_CHANNEL_BUFFER = 1 << 20


@dataclass(frozen=True)
class RoomSpec:
    room: int
    secret: str
    admin_key: str | None  # the VideoRoom's admin_key, when its configuration restricts who may create rooms
    description: str
    bitrate: int = 2_000_000
    videocodec: str = "vp8"


@dataclass(frozen=True)
class PublisherState:
    """`live`: Janus viewers can watch now (feed is the publisher id they subscribe to); else `reason` says why not."""

    live: bool
    reason: str
    feed: int | None = None
    session_id: int | None = None  # the publisher's own Janus session and handle, for the admin API
    handle_id: int | None = None


TrackSource = Callable[[], MediaStreamTrack]
TrackRelease = Callable[[MediaStreamTrack], None]
TokenSource = Callable[[], Awaitable[str | None]]


class RoomPublisher:
    def __init__(
        self,
        url: str,
        spec: RoomSpec,
        subscribe: TrackSource,
        release: TrackRelease,
        token: TokenSource,
        ice_servers: list[IceServer] | None = None,
        retry_s: tuple[float, float] = (0.5, 10.0),
        media_timeout_s: float = 15.0,
    ) -> None:
        self._media_timeout_s = media_timeout_s
        self._url = url
        self.spec = spec
        self._subscribe = subscribe
        self._release = release
        self._token = token
        self._ice_servers = [RTCIceServer(**s) for s in ice_servers or []]
        self._retry_s = retry_s
        self.state = PublisherState(False, f"connecting to Janus at {url}")
        self._channel: RTCDataChannel | None = None
        self._task: asyncio.Task[None] | None = None
        self.attempts = 0  # connection attempts so far (the first included)
        self.live_event = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"janus-publish:{self.spec.room}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def send_event(self, message: str) -> None:
        """Fan an event out to Janus viewers; dropped while not live or while the channel is backed up."""
        channel = self._channel
        if channel is None or channel.readyState != "open" or channel.bufferedAmount > _MAX_CHANNEL_BUFFER:
            return
        channel.send(message)

    def _set(self, state: PublisherState) -> None:
        if state != self.state:
            log.info("janus publisher", extra={"room": self.spec.room, "live": state.live, "reason": state.reason})
        self.state = state
        if state.live:
            self.live_event.set()
        else:
            self.live_event.clear()

    async def _run(self) -> None:
        pause = self._retry_s[0]
        while True:
            self.attempts += 1
            try:
                ended = await self._publish_once()
                if self.state.live:  # it was live: a fresh failure starts the backoff again
                    pause = self._retry_s[0]
                self._set(PublisherState(False, f"{ended}; republishing"))
            except JanusError as exc:
                self._set(PublisherState(False, str(exc)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # aiortc failures (ICE, DTLS): keep trying, say what happened
                log.warning("janus publish failed", extra={"room": self.spec.room, "error": repr(exc)[:300]})
                self._set(PublisherState(False, f"publishing to Janus failed: {type(exc).__name__}: {exc}"))
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._retry_s[1])

    async def _publish_once(self) -> str:
        """One connection: room, join, publish; returns why it ended (Janus or the room went away)."""
        ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        media_up = asyncio.Event()

        def on_event(event: HandleEvent) -> None:
            if event.kind == "webrtcup":
                media_up.set()
            if ended.done():
                return
            if event.kind == "closed":
                ended.set_result(event.reason)
            elif event.kind == "hangup":
                ended.set_result(f"Janus hung up ({event.reason or 'no reason given'})")
            elif event.plugin.get("videoroom") == "destroyed":
                ended.set_result(f"Janus room {self.spec.room} no longer exists")

        session = await open_session(self._url, await self._token())
        pc: RTCPeerConnection | None = None
        track: MediaStreamTrack | None = None
        try:
            handle = await session.attach(VIDEOROOM, on_event)
            await self._ensure_room(handle)
            joined = await handle.message(
                "joining the room",
                {"request": "join", "ptype": "publisher", "room": self.spec.room, "display": "scopecast"},
                room=self.spec.room,
            )
            feed = int(joined.data["id"])
            pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers) if self._ice_servers else None)
            track = self._subscribe()
            pc.addTransceiver(track, direction="sendonly")
            self._channel = pc.createDataChannel("events")
            await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers every candidate here
            reply = await handle.message(
                "publishing",
                {"request": "publish", "audio": False, "video": True, "data": True, "bitrate": self.spec.bitrate},
                {"type": "offer", "sdp": pc.localDescription.sdp},
                room=self.spec.room,
            )
            if reply.jsep is None:
                raise JanusError(f"Janus sent no answer to the offer for room {self.spec.room}")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=reply.jsep["sdp"], type=reply.jsep["type"]))
            await handle.trickle_done()

            @pc.on("connectionstatechange")
            def on_state() -> None:
                if pc is not None and pc.connectionState == "failed" and not ended.done():
                    ended.set_result("the media connection to Janus failed")

            # Janus lists the feed (subscribers may join) only once ICE and DTLS are up.
            up = asyncio.ensure_future(media_up.wait())
            either: set[asyncio.Future[Any]] = {up, ended}
            await asyncio.wait(either, timeout=self._media_timeout_s, return_when=asyncio.FIRST_COMPLETED)
            up.cancel()
            if ended.done():
                return ended.result()
            if not media_up.is_set():
                raise JanusError(
                    f"no media path to Janus at {self._url} within {self._media_timeout_s:g} s (ICE or DTLS failed)"
                )
            self._set(PublisherState(True, "published", feed, session.session_id, handle.handle_id))
            return await ended
        finally:
            self._channel = None
            if pc is not None:
                await pc.close()
            if track is not None:
                self._release(track)
            await session.destroy()
            await session.connection.close()

    async def _ensure_room(self, handle: JanusHandle) -> None:
        body: dict[str, object] = {
            "request": "create",
            "room": self.spec.room,
            "secret": self.spec.secret,
            "description": self.spec.description[:100],
            "publishers": 1,
            "is_private": True,
            "bitrate": self.spec.bitrate,
            "videocodec": self.spec.videocodec,
            "audiocodec": "opus",
            "notify_joining": False,
        }
        if self.spec.admin_key is not None:
            body["admin_key"] = self.spec.admin_key
        try:
            await handle.message("creating the room", body)
        except JanusRequestFailed as exc:
            if exc.code != VIDEOROOM_ROOM_EXISTS:  # a republish after a lost connection finds its room
                raise
