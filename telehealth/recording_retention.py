"""The retention sweep: recordings older than `recording_retention_days` are deleted, each deletion audited."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telehealth.recording_files import RecordingFiles
from telehealth.store.cases import CaseStore
from telehealth.store.recordings import sweep_expired

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 3600.0


class RetentionSweep:
    def __init__(
        self, store: CaseStore, files: RecordingFiles, retention_days: int, interval_s: float = SWEEP_INTERVAL_S
    ) -> None:
        self._store = store
        self._files = files
        self._retention_days = retention_days
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> list[int]:
        removed = await asyncio.to_thread(sweep_expired, self._store, self._files, self._retention_days)
        if removed:
            log.info("expired recordings deleted", extra={"count": len(removed), "days": self._retention_days})
        return removed

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="recording-retention")

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:  # a database hiccup: the next sweep tries again
                log.exception("recording retention sweep failed")
            await asyncio.sleep(self._interval_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
