"""A scopecast server in its own process for benchmarks that measure the server's CPU apart from their clients.

Settings come from the SCOPECAST_* environment; BENCH_SERVER_TOKEN is the one session token it accepts (a bench
clinician), BENCH_SERVER_PORT the loopback port. Run by `scopecast bench viewers`.
"""

from __future__ import annotations

import os
import secrets

import uvicorn

from scopecast.app import create_app
from scopecast.settings import Settings
from stream.access import AccessDenied, Principal, StreamAccess


def bench_clinician_access(token: str) -> StreamAccess:
    async def authenticate(presented: str) -> Principal:
        if not secrets.compare_digest(presented, token):
            raise AccessDenied("invalid_session", "not the bench's token")
        return Principal(user_id=0, role="bench", may_watch=True, may_publish=True)

    return StreamAccess(authenticate, "scopecast_bench_session")


def main() -> None:
    app = create_app(Settings(), stream_access=bench_clinician_access(os.environ["BENCH_SERVER_TOKEN"]))
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["BENCH_SERVER_PORT"]), log_level="warning")


if __name__ == "__main__":
    main()
