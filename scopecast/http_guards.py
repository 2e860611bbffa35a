"""ASGI middleware for every HTTP response of the server: security headers, and a deadline on reading request bodies.

Pure ASGI (not BaseHTTPMiddleware) so WebSocket traffic and streamed responses pass untouched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages load only their own scripts and styles; media come from WebRTC (blob:/mediastream:); no page may be framed.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def page_policy(connect_src: tuple[str, ...] = ()) -> str:
    """The page policy, letting pages also connect to `connect_src` (the Janus API's WebSocket, when configured)."""
    if not connect_src:
        return PAGE_POLICY
    return PAGE_POLICY.replace("connect-src 'self'", "connect-src 'self' " + " ".join(connect_src))


# FastAPI's interactive docs load Swagger UI / ReDoc from their CDN with an inline bootstrap script.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com; font-src https://fonts.gstatic.com; worker-src blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_DOCS_PATHS = ("/docs", "/redoc")


@dataclass(frozen=True)
class BodyDeadline:
    """A request body must keep arriving: at most `idle_s` between chunks, and after `grace_s` at least
    `min_bytes_per_s` on average (slow-loris uploads would otherwise hold a connection and a worker as long as the
    client likes). No absolute cap: a 20 MB photo over a poor mobile uplink may take minutes and must not be lost."""

    idle_s: float = 15.0
    min_bytes_per_s: float = 4096.0
    grace_s: float = 20.0


class SecurityHeaders:
    def __init__(self, app: ASGIApp, connect_src: tuple[str, ...] = ()) -> None:
        self.app = app
        self._page_policy = page_policy(connect_src)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if scope.get("path", "").startswith(_DOCS_PATHS) else self._page_policy

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in _security_headers(policy):
                    if name not in present:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _security_headers(policy: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", policy.encode()),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-content-type-options", b"nosniff"),
        (b"permissions-policy", b"camera=(self), microphone=(self), geolocation=()"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


class RequestBodyDeadline:
    def __init__(self, app: ASGIApp, deadline: BodyDeadline) -> None:
        self.app = app
        self.deadline = deadline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        received = 0
        body_done = False
        deadline = self.deadline

        async def receive_in_time() -> Message:
            nonlocal body_done, received
            if body_done:  # after the body only a disconnect can come: wait for it as long as the app likes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout=deadline.idle_s)
            except TimeoutError:
                # Raised inside the route, so the app's own handler turns it into a 408 response.
                raise HTTPException(408, "the request body arrived too slowly; send it again") from None
            received += len(message.get("body", b""))
            elapsed = loop.time() - started
            if elapsed > deadline.grace_s and received < deadline.min_bytes_per_s * elapsed:
                raise HTTPException(408, "the request body arrived too slowly; send it again")
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, receive_in_time, send)
