"""Server-sent events for an open case page: `changed` whenever the case's fingerprint moves (a patient's new
photo, an analysis finished, a consult capture, a report version), so the page refreshes without a reload.

The stream polls the database rather than listening in-process: a photo stored by another server process (several
uvicorn workers on PostgreSQL) shows up just the same. The session is re-checked on every poll without counting as
activity, so an open page neither keeps an idle session alive nor outlives a sign-out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict

from telehealth.errors import TelehealthError
from telehealth.records import Actor
from telehealth.store.case_changes import CaseFingerprint

Fingerprint = Callable[[], Awaitable[CaseFingerprint]]
SessionCheck = Callable[[], Awaitable[Actor]]
Disconnected = Callable[[], Awaitable[bool]]

# Proxies and load balancers drop connections idle for a minute or so; a comment line keeps this one open.
_KEEPALIVE_S = 15.0


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def case_event_stream(
    fingerprint: Fingerprint, session_alive: SessionCheck, disconnected: Disconnected, poll_s: float
) -> AsyncIterator[str]:
    """`ready` with the current fingerprint, then `changed` on every change; `ended` with the reason (signed out,
    case no longer visible) closes the stream. The browser's EventSource reconnects by itself after a network drop."""
    try:
        last = await fingerprint()
    except TelehealthError as exc:
        yield _event("ended", {"reason": exc.reason})
        return
    yield "retry: 3000\n" + _event("ready", asdict(last))
    quiet_s = 0.0
    while not await disconnected():
        await asyncio.sleep(poll_s)
        try:
            await session_alive()
            now = await fingerprint()
        except TelehealthError as exc:
            yield _event("ended", {"reason": exc.reason})
            return
        if now != last:
            last, quiet_s = now, 0.0
            yield _event("changed", asdict(now))
            continue
        quiet_s += poll_s
        if quiet_s >= _KEEPALIVE_S:
            quiet_s = 0.0
            yield ": keep-alive\n\n"
