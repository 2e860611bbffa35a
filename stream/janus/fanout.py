"""Every public stream of the hub published once into its own Janus VideoRoom, and what a viewer needs to watch it.

The hub tells nobody when a stream starts or ends, so a short sync loop follows its list: a new stream gets a room
(random id, its own secret) and a publisher; a removed one loses both. While Janus is unreachable each stream says
why, and viewers watch directly from scopecast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stream.hub import StreamHub, UnknownStream
from stream.janus.admin import JanusAdmin
from stream.janus.client import open_session
from stream.janus.errors import JanusError
from stream.janus.publisher import VIDEOROOM, RoomPublisher, RoomSpec
from stream.janus.tokens import JanusToken, JanusTokens
from stream.turn import IceServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JanusConfig:
    url: str  # where scopecast reaches the Janus API (ws://127.0.0.1:8188)
    admin_url: str  # the admin API (loopback only)
    admin_secret: str
    public_url: str  # where browsers reach the Janus API
    token_ttl_s: int = 600
    room_admin_key: str | None = None  # the VideoRoom's admin_key, when room creation is restricted
    ice_servers: list[IceServer] = field(default_factory=list)
    retry_s: tuple[float, float] = (0.5, 10.0)
    sync_every_s: float = 1.0
    count_viewers_every_s: float = 5.0


@dataclass(frozen=True)
class JanusWatch:
    """Whether a stream can be watched through Janus now, and where; `reason` says why not."""

    available: bool
    reason: str
    url: str | None = None
    room: int | None = None
    feed: int | None = None


@dataclass
class _Published:
    publisher: RoomPublisher
    stop_events: Callable[[], None]
    token: str  # this publisher's own Janus token, kept apart from the viewers' per-user ones


class JanusFanout:
    def __init__(self, hub: StreamHub, config: JanusConfig) -> None:
        self._hub = hub
        self.config = config
        self.admin = JanusAdmin(config.admin_url, config.admin_secret)
        self.tokens = JanusTokens(self.admin, config.token_ttl_s)
        self._published: dict[str, _Published] = {}
        self._sync: asyncio.Task[None] | None = None
        self._viewers: dict[str, int] = {}  # Janus subscribers per stream, as last counted
        self._counted_at = 0.0

    def start(self) -> None:
        self.tokens.start()
        self._sync = asyncio.create_task(self._follow_hub(), name="janus-fanout")

    async def close(self) -> None:
        if self._sync is not None:
            self._sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync
        for stream_id in list(self._published):
            await self._unpublish(stream_id)
        await self.tokens.close()

    def watch(self, stream_id: str) -> JanusWatch:
        """Raises UnknownStream for a stream the hub does not list."""
        self._hub.get(stream_id)
        published = self._published.get(stream_id)
        if published is None:
            return JanusWatch(False, "the stream is not published to Janus yet")
        state = published.publisher.state
        if not state.live:
            return JanusWatch(False, state.reason)
        return JanusWatch(True, "live", self.config.public_url, published.publisher.spec.room, state.feed)

    def janus_viewers(self, stream_id: str) -> int | None:
        """How many subscribers Janus reported for the stream's feed at the last count (every few seconds); None
        while it is not published there or Janus could not be asked."""
        return self._viewers.get(stream_id)

    def publisher(self, stream_id: str) -> RoomPublisher | None:
        published = self._published.get(stream_id)
        return published.publisher if published is not None else None

    async def issue_token(self, user_id: int, renew: str | None = None, sign_in: str = "") -> JanusToken:
        """A viewer's token for `user_id` signed in as `sign_in`: `renew`, a lifetime further, when it is still
        theirs and live; else a new one. Raises JanusError when Janus cannot store a new one."""
        if renew is not None:
            renewed = await self.tokens.renew(renew, user_id, sign_in)
            if renewed is not None:
                return renewed
        return await self.tokens.issue(user_id, sign_in)

    async def signed_out(self, sign_in: str) -> None:
        """A sign-in ended: its viewer tokens stop working now (Janus ends those viewers' sessions)."""
        ended = await self.tokens.revoke_sign_in(sign_in)
        if ended:
            log.info("janus tokens revoked at sign-out", extra={"tokens": ended})

    async def _follow_hub(self) -> None:
        while True:
            try:
                await self._sync_once()
            except Exception:  # a bug here must not end fan-out for every stream; the log has it
                log.exception("janus fan-out sync failed")
            await asyncio.sleep(self.config.sync_every_s)

    async def _sync_once(self) -> None:
        wanted = {entry.stream_id for entry in self._hub.streams()}
        for stream_id in wanted - self._published.keys():
            self._publish(stream_id)
        for stream_id in self._published.keys() - wanted:
            await self._unpublish(stream_id)
        # Janus does not tell a publisher who subscribed: repeat the status so a new viewer has it soon.
        for stream_id, published in self._published.items():
            with contextlib.suppress(UnknownStream):
                published.publisher.send_event(self._hub.get(stream_id).pipeline.status_json)
        now = time.monotonic()
        if now - self._counted_at >= self.config.count_viewers_every_s:
            self._counted_at = now
            await self._count_viewers()

    async def _count_viewers(self) -> None:
        """Ask Janus how many subscribers each live publisher has (its handle's report: one admin call a stream)."""
        counts: dict[str, int] = {}
        for stream_id, published in list(self._published.items()):
            state = published.publisher.state
            if not state.live or state.session_id is None or state.handle_id is None:
                continue
            try:
                info = await self.admin.handle_info(state.session_id, state.handle_id)
            except JanusError as exc:
                log.info("janus viewers not counted", extra={"stream": stream_id, "error": str(exc)})
                continue
            count = video_subscribers(info)
            if count is not None:
                counts[stream_id] = count
        self._viewers = counts

    def _publish(self, stream_id: str) -> None:
        try:
            entry = self._hub.get(stream_id)
        except UnknownStream:
            return
        spec = RoomSpec(
            room=secrets.randbelow(1 << 52) + 1,  # Janus room ids are JSON numbers: stay within a double's integers
            secret=secrets.token_urlsafe(18),
            admin_key=self.config.room_admin_key,
            description=f"scopecast {stream_id}",
        )
        hub = self._hub
        token = secrets.token_urlsafe(24)
        admin = self.admin

        async def service_token() -> str:
            await admin.add_token(token)  # again on each attempt: a restarted Janus has forgotten every token
            return token

        publisher = RoomPublisher(
            self.config.url,
            spec,
            lambda: hub.subscribe(stream_id),
            lambda track: hub.unsubscribe(stream_id, track),
            service_token,
            self.config.ice_servers,
            self.config.retry_s,
        )
        stop_events = entry.pipeline.add_listener(publisher.send_event)
        self._published[stream_id] = _Published(publisher, stop_events, token)
        publisher.start()

    async def _unpublish(self, stream_id: str) -> None:
        published = self._published.pop(stream_id, None)
        if published is None:
            return
        published.stop_events()
        await published.publisher.close()
        await self._destroy_room(published.publisher.spec, published.token)
        with contextlib.suppress(JanusError):
            await self.admin.remove_token(published.token)

    async def _destroy_room(self, spec: RoomSpec, token: str) -> None:
        """Best effort: a room left behind holds no media and dies with Janus."""
        try:
            session = await open_session(self.config.url, token)
        except JanusError:
            return
        try:
            handle = await session.attach(VIDEOROOM)
            await handle.message(
                "destroying the room", {"request": "destroy", "room": spec.room, "secret": spec.secret}
            )
        except JanusError as exc:
            log.info("janus room not destroyed", extra={"room": spec.room, "error": str(exc)})
        finally:
            await session.destroy()
            await session.connection.close()


def video_subscribers(handle_info: dict[str, Any]) -> int | None:
    """A VideoRoom publisher's subscriber count, from its handle's admin report (the video stream's `subscribers`)."""
    plugin = handle_info.get("plugin_specific")
    if not isinstance(plugin, dict) or plugin.get("type") != "publisher":
        return None
    for stream in plugin.get("streams") or []:
        if isinstance(stream, dict) and stream.get("type") == "video" and isinstance(stream.get("subscribers"), int):
            return int(stream["subscribers"])
    return 0
