"""Per-user, time-limited Janus tokens: added through the admin API when a signed-in viewer asks, renewed while their
page keeps asking with the sign-in it was issued to, removed at expiry, and removed at once when that sign-in signs
out (`revoke_sign_in`): a token copied out of a page stops working within a lifetime, a signed-out one at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from stream.janus.admin import JanusAdmin
from stream.janus.errors import JanusError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JanusToken:
    token: str
    user_id: int
    expires_at: float  # unix time
    sign_in: str = ""  # the sign-in it was issued to (Principal.sign_in)


class JanusTokens:
    def __init__(self, admin: JanusAdmin, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self._admin = admin
        self._ttl_s = ttl_s
        self._clock = clock
        self._live: dict[str, JanusToken] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def issue(self, user_id: int, sign_in: str = "") -> JanusToken:
        """A new token for `user_id` signed in as `sign_in`; raises JanusError (e.g. JanusUnreachable) when Janus
        cannot store it."""
        await self.expire()
        grant = JanusToken(secrets.token_urlsafe(24), user_id, self._clock() + self._ttl_s, sign_in)
        await self._admin.add_token(grant.token)
        self._live[grant.token] = grant
        return grant

    async def renew(self, token: str, user_id: int, sign_in: str = "") -> JanusToken | None:
        """Push a live token of `user_id` a lifetime further (Janus checks the token on every request, keepalives
        included: a token removed while its viewer watches ends that viewer's session). None when it is not theirs
        (another user, or another sign-in of theirs) or already expired: they need a new one."""
        await self.expire()
        grant = self._live.get(token)
        if grant is None or grant.user_id != user_id or grant.sign_in != sign_in:
            return None
        renewed = JanusToken(token, user_id, self._clock() + self._ttl_s, sign_in)
        self._live[token] = renewed
        return renewed

    async def revoke_sign_in(self, sign_in: str) -> int:
        """Sign-out: the tokens issued to this sign-in stop working now (the user's other sign-ins keep theirs).
        Returns how many were removed."""
        ended = [t for t in self._live.values() if sign_in and t.sign_in == sign_in]
        await self._remove(ended)
        return len(ended)

    async def expire(self) -> None:
        now = self._clock()
        await self._remove([t for t in self._live.values() if t.expires_at <= now])

    def is_live(self, token: str) -> bool:
        grant = self._live.get(token)
        return grant is not None and grant.expires_at > self._clock()

    async def _remove(self, grants: list[JanusToken]) -> None:
        for grant in grants:
            self._live.pop(grant.token, None)
            try:
                await self._admin.remove_token(grant.token)
            except JanusError as exc:  # a restarted Janus forgot it anyway
                log.info("janus token not removed", extra={"error": str(exc)})

    def start(self, every_s: float = 10.0) -> None:
        async def reap() -> None:
            while True:
                await asyncio.sleep(every_s)
                await self.expire()

        self._reaper = asyncio.create_task(reap(), name="janus-token-reaper")

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self._remove(list(self._live.values()))
