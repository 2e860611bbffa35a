"""A bound on how many photos are decoded at once, so N parallel uploads cannot take N times the decode memory."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from fastapi.concurrency import run_in_threadpool

from telehealth.memory_release import release_free_memory

P = ParamSpec("P")
T = TypeVar("T")


class DecodeSlots:
    """At most `limit` decodes run at once, each in a worker thread; the others wait on the event loop (holding no
    thread). One instance per telehealth app, shared by every route that decodes an untrusted image."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("at least one decode slot is needed")
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)  # binds to the running loop on first use, not here

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._slots:
            return await run_in_threadpool(functools.partial(_then_release, fn, *args, **kwargs))


def _then_release(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    finally:
        release_free_memory()  # the decode's buffers are freed by now: return them, refused photos included
