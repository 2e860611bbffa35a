"""Signing out ends watching through Janus too: the sign-in's viewer tokens are removed from Janus at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable

from stream.janus.fanout import JanusFanout

log = logging.getLogger(__name__)


def janus_sign_out(janus: JanusFanout, loop: asyncio.AbstractEventLoop) -> Callable[[str], None]:
    """A sign-out listener that takes back the sign-in's Janus tokens. Sign-out runs on a worker thread (a sync
    route); the admin API is spoken on the event loop."""

    def revoke(sign_in: str) -> None:
        done = asyncio.run_coroutine_threadsafe(janus.signed_out(sign_in), loop)
        done.add_done_callback(_log_failure)

    return revoke


def _log_failure(done: concurrent.futures.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("janus tokens not revoked at sign-out", exc_info=done.exception())
