"""A one-item slot that always holds the newest value: the newest frame wins.

Producers overwrite; each consumer waits for something newer than what it saw
last and learns how many items it skipped. Nothing ever queues up, so a slow
consumer costs dropped frames, never growing latency or memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class SlotClosed(Exception):
    """The producer has finished; no newer item will come."""


@dataclass(frozen=True)
class Taken(Generic[T]):
    seq: int  # 1 for the first item ever put, then +1 per put
    item: T
    skipped: int  # items put after the consumer's last one and before this one


class FreshestFrame(Generic[T]):
    """Newest-value slot shared by one producer and any number of consumers (one event loop)."""

    def __init__(self) -> None:
        self._seq = 0
        self._item: T | None = None
        self._closed = False
        self._changed = asyncio.Event()

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def latest(self) -> T | None:
        return self._item

    def put(self, item: T) -> int:
        """Replace the held item; returns its sequence number."""
        if self._closed:
            raise SlotClosed("slot is closed")
        self._seq += 1
        self._item = item
        self._wake()
        return self._seq

    def close(self) -> None:
        self._closed = True
        self._item = None  # a closed slot hands nothing out: let the frame go now, not at the next garbage collection
        self._wake()

    async def next_after(self, seen_seq: int) -> Taken[T]:
        """Wait for an item newer than `seen_seq` and return the newest one."""
        while self._closed or self._seq <= seen_seq:
            if self._closed:
                raise SlotClosed("slot is closed")
            await self._changed.wait()
        assert self._item is not None
        return Taken(self._seq, self._item, self._seq - seen_seq - 1)

    def _wake(self) -> None:
        # Waiters hold the old event; a fresh one is armed for the next round.
        self._changed.set()
        self._changed = asyncio.Event()
