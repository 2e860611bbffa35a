"""The telehealth pages (patient, GP, setup, sign-in) and their scripts and styles, read once at start-up."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from telehealth.errors import NotFound
from telehealth.first_run import SETUP_PATH
from telehealth.http_route import telehealth_router
from telehealth.settings import TelehealthSettings
from telehealth.wound.marker_page import marker_page_html

STATIC_DIR = Path(__file__).resolve().parent / "static"
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def page_router(settings: TelehealthSettings) -> APIRouter:
    router = telehealth_router(settings.max_json_bytes)
    pages = {name: (STATIC_DIR / f"{name}.html").read_bytes() for name in ("patient", "gp", "setup", "signin")}
    static_files = {p.name: p.read_bytes() for p in STATIC_DIR.iterdir() if p.suffix in _STATIC_TYPES}

    @router.get("/patient", response_class=HTMLResponse, include_in_schema=False)
    async def patient() -> HTMLResponse:
        return HTMLResponse(pages["patient"], headers={"Cache-Control": "no-cache"})

    # Public: a marker is no secret, and a patient may print it before their account exists.
    marker_page = marker_page_html(marker_mm=settings.marker_mm, stylesheet="/telehealth/static/marker.css")

    @router.get("/marker", response_class=HTMLResponse, include_in_schema=False)
    async def marker() -> HTMLResponse:
        """The printable scale marker with its ruler and how to place it (also the tissue colours' reference)."""
        return HTMLResponse(marker_page, headers={"Cache-Control": "no-cache"})

    @router.get("/gp", response_class=HTMLResponse, include_in_schema=False)
    async def gp() -> HTMLResponse:
        return HTMLResponse(pages["gp"], headers={"Cache-Control": "no-cache"})

    @router.get(SETUP_PATH, response_class=HTMLResponse, include_in_schema=False)
    async def setup_page() -> HTMLResponse:
        return HTMLResponse(pages["setup"], headers={"Cache-Control": "no-cache"})

    @router.get("/signin", response_class=HTMLResponse, include_in_schema=False)
    async def signin_page() -> HTMLResponse:
        """Sign in, then go to ?next= (a same-origin path only; checked in signin.js)."""
        return HTMLResponse(pages["signin"], headers={"Cache-Control": "no-cache"})

    @router.get("/telehealth/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        data = static_files.get(name)
        if data is None:
            raise NotFound("no such file")
        return Response(data, media_type=_STATIC_TYPES[Path(name).suffix], headers={"Cache-Control": "no-cache"})

    return router
