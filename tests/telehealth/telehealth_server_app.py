"""A telehealth-only app for tests that need a real server process (uvicorn --factory); settings from the env."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from telehealth.api import create_telehealth
from telehealth.settings import TelehealthSettings


def build_app() -> FastAPI:
    services = create_telehealth(TelehealthSettings())  # type: ignore[call-arg]  # values come from SCOPECAST_TELEHEALTH_*

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await services.close()

    app = FastAPI(lifespan=lifespan)
    app.include_router(services.router)
    return app
