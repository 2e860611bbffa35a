"""HTTP routes for watching through Janus: whether a stream is on Janus now (with a per-user token), and janus.js.

A token goes only to a signed-in user whose role may watch streams (the same rule as every stream route); it is
valid for the configured lifetime and removed from Janus after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from pydantic import BaseModel

from stream.access import Principal
from stream.hub import UnknownStream
from stream.janus.errors import JanusError
from stream.janus.fanout import JanusFanout

# Debian's libjs-janus-gateway.
JANUS_JS = Path("/usr/share/javascript/janus-gateway/janus.js")


class JanusWatchReply(BaseModel):
    """`configured`: this server uses Janus at all; `available`: watch through it now (else `reason` says why not
    and the page watches directly from scopecast)."""

    configured: bool
    available: bool
    reason: str
    url: str | None = None
    room: int | None = None
    feed: int | None = None
    token: str | None = None
    expires_at: float | None = None


def janus_router(
    fanout: JanusFanout | None,
    caller: Callable[[Request], Awaitable[Principal]],
    janus_js: Path = JANUS_JS,
) -> APIRouter:
    router = APIRouter()

    @router.get("/api/streams/{stream_id}/janus")
    async def janus_watch(
        stream_id: str, renew: str | None = None, principal: Principal = Depends(caller)
    ) -> JanusWatchReply:
        """How to watch `stream_id` through Janus, with a token for the caller when it can be watched there: `renew`
        (the caller's current token) is kept and extended while live, so watching goes on uninterrupted; else a new
        one. A page renews well within the lifetime; an expired token means subscribing again."""
        if fanout is None:
            return JanusWatchReply(configured=False, available=False, reason="Janus is not configured on this server")
        try:
            watch = fanout.watch(stream_id)
        except UnknownStream as exc:
            raise HTTPException(404, str(exc)) from None
        if not watch.available:
            return JanusWatchReply(configured=True, available=False, reason=watch.reason)
        try:
            token = await fanout.issue_token(principal.user_id, renew, principal.sign_in)
        except JanusError as exc:
            return JanusWatchReply(configured=True, available=False, reason=str(exc))
        return JanusWatchReply(
            configured=True,
            available=True,
            reason=watch.reason,
            url=watch.url,
            room=watch.room,
            feed=watch.feed,
            token=token.token,
            expires_at=token.expires_at,
        )

    @router.get("/vendor/janus.js", include_in_schema=False)
    async def janus_script() -> Response:
        if not janus_js.is_file():
            return PlainTextResponse(
                "janus.js is not installed (apt-get install -y libjs-janus-gateway)", status_code=404
            )
        return FileResponse(janus_js, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})

    return router
