"""A telehealth-only app for tests that need a real server process (uvicorn --factory); settings from the env."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from telehealth_testutil import include_telehealth

from scopecast.app import build_telehealth
from telehealth.settings import TelehealthSettings


def build_app() -> FastAPI:
    services = build_telehealth(TelehealthSettings())  # type: ignore[call-arg]  # values come from SCOPECAST_TELEHEALTH_*

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await services.close()

    app = FastAPI(lifespan=lifespan)
    include_telehealth(app, services)
    return app
