"""The uvicorn configuration `scopecast serve` runs with (and the tests, so they exercise the same settings)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from scopecast.settings import Settings

WS_MAX_BYTES = 1 << 20  # a frame over this closes the socket (1009) before any of our code reads it


def uvicorn_config(app: FastAPI, settings: Settings, **overrides: object) -> uvicorn.Config:
    """Proxy headers are believed only from the proxies named in `forwarded_allow_ips`: uvicorn's own default trusts
    127.0.0.1, so any local client could pick its address with X-Forwarded-For and escape per-address limits."""
    trusted = settings.forwarded_allow_ips.strip()
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "ws_max_size": WS_MAX_BYTES,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or "",
        "server_header": False,
        "timeout_keep_alive": 5,
    }
    options.update(overrides)
    # The options are uvicorn.Config's own keyword arguments, each of its type: a dict of mixed values cannot say so.
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]
