"""How every telehealth router is made: its route class turns domain errors into clear JSON errors and refuses
oversize JSON bodies before reading them.

FastAPI reads a route's whole body before any dependency runs, so a size check in a dependency would come too late;
wrapping the route handler is the earliest point a router (not the app) controls.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import Message, Receive

from telehealth.errors import InvalidSession, TelehealthError


def error_response(status_code: int, reason: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
    return JSONResponse({"detail": reason}, status_code=status_code, headers=headers)


def limited_receive(receive: Receive, max_bytes: int, what: str) -> Receive:
    """Counts body bytes as they arrive (chunked bodies carry no Content-Length) and stops at the limit."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise HTTPException(413, f"{what} too large: over {max_bytes / 1_000_000:g} MB")
        return message

    return wrapped


def declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def telehealth_route_class(max_json_bytes: int) -> type[APIRoute]:
    class TelehealthRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            parses_body = self.body_field is not None

            async def guarded(request: Request) -> Response:
                if parses_body:
                    size = declared_length(request)
                    if size is not None and size > max_json_bytes:
                        return error_response(413, f"body too large: {size} bytes over {max_json_bytes}")
                    request = Request(request.scope, limited_receive(request.receive, max_json_bytes, "body"))
                try:
                    return await handler(request)
                except TelehealthError as exc:
                    refused = error_response(exc.status_code, exc.reason)
                    retry_after = getattr(exc, "retry_after_s", None)
                    if retry_after is not None:
                        refused.headers["Retry-After"] = str(retry_after)
                    return refused

            return guarded

    return TelehealthRoute


def telehealth_router(max_json_bytes: int) -> APIRouter:
    """A router whose routes answer TelehealthError with its status and reason, and cap JSON bodies."""
    return APIRouter(route_class=telehealth_route_class(max_json_bytes))


__all__ = ["InvalidSession", "declared_length", "error_response", "limited_receive", "telehealth_router"]
