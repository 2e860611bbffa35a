"""The outbox sender: queues a photo's instances for the PACS and delivers them, one at a time, with backoff.

The queue is the database (store.dicom_outbox): an instance is queued before anything is sent and marked sent only
once the PACS has answered that it stored it, so a crash, a SIGKILL or a PACS outage loses nothing; at worst an
instance is sent twice (the PACS keeps one copy: same SOP Instance UID). Building and sending run on one worker
thread; the asyncio task only waits, so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from telehealth.dicom.builder import InstanceBuilder, instance_kinds
from telehealth.dicom.instances import InvalidImage
from telehealth.dicom.measurement_sr import NothingMeasured
from telehealth.dicom.records import FailureKind, OutboxItem, SendFailure
from telehealth.dicom.settings import DicomSettings
from telehealth.dicom.stow import StowSender
from telehealth.errors import NotFound
from telehealth.records import utc_now
from telehealth.store.dicom_outbox import (
    analysed_photos_not_queued,
    due_items,
    enqueue,
    instance_uids,
    make_unsent_due,
    next_due_at,
    record_failure,
    record_sent,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def retry_delay_s(attempts: int, base_s: float, max_s: float) -> float:
    """Doubling waits after each failed attempt, capped: 5 s, 10 s, 20 s ... up to `max_s`."""
    return min(max_s, base_s * (2 ** max(0, min(attempts - 1, 30))))


class DicomOutbox:
    def __init__(
        self,
        builder: InstanceBuilder,
        sender: StowSender | None,
        settings: DicomSettings,
        clock: Clock = utc_now,
    ) -> None:
        self.builder = builder
        self.store = builder.store
        self.sender = sender
        self.settings = settings
        self._clock = clock
        # One thread: instances go one after another, and two cores are shared with the server.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dicom-outbox")
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        # Checked by the loop as well as cancelling it: on Python 3.11, asyncio.wait_for can swallow a cancel that
        # lands as the wake-up event is set (a photo queued from another thread), and the task would run on.
        self._stopping = False

    @property
    def enabled(self) -> bool:
        return self.sender is not None

    # -- queueing (blocking) -----------------------------------------------------------------------------------

    def enqueue_photo(self, photo_id: int, again: bool = False) -> list[OutboxItem]:
        """Queue every instance the photo yields now (image, overlay once analysed, SR once measured). Blocking."""
        source = self.builder.source(photo_id)
        uids = [
            instance_uids(self.store, photo_id, kind, self.settings.uid_root).sop_instance_uid
            for kind in instance_kinds(source)
        ]
        items = enqueue(self.store, uids, again=again)
        self._poke()
        return items

    def after_analysis(self, photo_id: int) -> None:
        """The analysis worker's hook: once a photo is analysed its instances are complete, so queue them. Never
        raises: a photo whose file vanished is logged, the analysis is not affected."""
        if not self.enabled:
            return
        try:
            self.enqueue_photo(photo_id)
        except NotFound as exc:
            log.warning("photo not queued for the PACS", extra={"photo_id": photo_id, "reason": exc.reason})

    # -- delivery (blocking) -----------------------------------------------------------------------------------

    def attempt(self, item: OutboxItem) -> OutboxItem:
        """One attempt at one instance: build it from the store, send it, record the outcome."""
        if self.sender is None:
            raise RuntimeError("no PACS configured: set SCOPECAST_DICOMWEB_URL")
        failure: SendFailure | None
        try:
            built = self.builder.photo_instances(item.photo_id, only=item.kind)
            if not built:
                raise NotFound(f"photo {item.photo_id} no longer yields a {item.kind.value} instance")
            failure = self.sender.send(built[0].dataset)
        except (NotFound, InvalidImage, NothingMeasured) as exc:
            failure = SendFailure(FailureKind.build_failed, f"could not make the instance: {exc}")
        except Exception as exc:  # noqa: BLE001 - one bad instance must not stall the queue behind it
            failure = SendFailure(
                FailureKind.build_failed, f"could not make or encode the instance: {type(exc).__name__}: {exc}"
            )
        if failure is None:
            done = record_sent(self.store, item.sop_instance_uid)
            log.info("DICOM instance sent", extra={"photo_id": item.photo_id, "kind": item.kind.value})
            return done
        wait = retry_delay_s(item.attempts + 1, self.settings.retry_base_s, self.settings.retry_max_s)
        if failure.kind is FailureKind.build_failed:
            wait = self.settings.retry_max_s  # nothing will change soon: try again rarely
        recorded = record_failure(
            self.store,
            item.sop_instance_uid,
            failure.kind,
            failure.reason,
            failure.http_status,
            self._clock() + timedelta(seconds=wait),
        )
        log.warning(
            "DICOM instance not sent",
            extra={"photo_id": item.photo_id, "kind": item.kind.value, "failure": failure.kind.value},
        )
        return recorded

    def drain(self) -> list[OutboxItem]:
        """Attempt every instance that is due, once; returns their new status. Blocking."""
        done: list[OutboxItem] = []
        while True:
            items = due_items(self.store, self._clock(), limit=20)
            items = [i for i in items if all(i.sop_instance_uid != d.sop_instance_uid for d in done)]
            if not items:
                return done
            for item in items:
                done.append(self.attempt(item))

    def resume(self) -> int:
        """At start-up: queue analysed photos missing from the outbox and make every unsent instance due now."""
        queued = 0
        for photo_id in analysed_photos_not_queued(self.store):
            try:
                self.enqueue_photo(photo_id)
                queued += 1
            except NotFound as exc:
                log.warning("photo not queued for the PACS", extra={"photo_id": photo_id, "reason": exc.reason})
        return queued + make_unsent_due(self.store)

    # -- the background task ----------------------------------------------------------------------------------

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def _wait_s(self) -> float:
        due = next_due_at(self.store)
        if due is None:
            return self.settings.poll_s
        return max(0.0, min(self.settings.poll_s, (due - self._clock()).total_seconds()))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        await loop.run_in_executor(self._executor, self.resume)
        while not self._stopping:
            try:
                await loop.run_in_executor(self._executor, self.drain)
                wait = await loop.run_in_executor(self._executor, self._wait_s)
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end delivery for good
                log.error("DICOM outbox round failed", extra={"error": type(exc).__name__})
                wait = self.settings.poll_s
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass
            self._wake.clear()

    def start(self) -> None:
        """Start delivering in the background (call once the event loop runs); a no-op without a PACS."""
        if not self.enabled or self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = self._loop.create_task(self._run())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._loop = None
        # An attempt in flight finishes on its thread (bounded by the timeout); unsent, it stays queued.
        self._executor.shutdown(wait=False)
