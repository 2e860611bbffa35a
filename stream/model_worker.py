"""One model worker per model: every stream that runs the model shares it, and their frames go through in batches.

Each waiting stream offers its freshest-frame slot, not a frame: when the
worker is free it takes the newest frame of each waiting stream, oldest-waiting
stream first, and runs them as one batch (one network run when the model is a
`perception.model.StreamBatchModel`, else one `predict` after another on the
same thread). Batches grow by themselves under load (streams that became ready
while a batch ran are all taken by the next) and stay at one frame for a stream
alone; a cap (`BatchPolicy.max_batch`) and the measured cost per frame keep each
batch within a latency budget, and whoever is left waits at the head of the line
for the next. A stream that is slow to come back (paced, paused, a busy consumer)
is simply not waiting: no batch ever waits for it.

The worker never processes results itself: it resolves each stream's future and
goes on, so whatever a stream does with its findings never delays the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import av

from perception.findings import FrameFindings
from perception.model import FrameModel, ModelError, StreamBatchModel, StreamFrame
from stream.frames import frame_to_array
from stream.freshest import FreshestFrame, SlotClosed, Taken
from stream.metrics import StreamMetrics
from stream.model_results import SourceFrame
from stream.model_runner import OnTaken, run_model

log = logging.getLogger(__name__)

ModelFactory = Callable[[], FrameModel]
Outcome = tuple[Taken[SourceFrame], FrameFindings]


@dataclass(frozen=True)
class BatchPolicy:
    max_batch: int = 8  # frames (one per stream) in one model run at most
    # A batch is cut to what the measured cost per frame lets finish within this, so a stream's findings are never
    # held back much longer than one frame's model time by the streams batched with it.
    latency_budget_s: float = 0.25

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        if self.latency_budget_s <= 0:
            raise ValueError(f"latency_budget_s must be positive, got {self.latency_budget_s}")


@dataclass
class _Waiting:
    stream_id: str
    frames: FreshestFrame[SourceFrame]
    seen: int
    on_taken: OnTaken
    since: float  # monotonic time it started waiting: the longest-waiting stream goes first
    future: asyncio.Future[Outcome]


@dataclass(frozen=True)
class _Job:
    waiting: _Waiting
    taken: Taken[SourceFrame]
    model: FrameModel


class ModelWorker:
    """One model, loaded once, on one thread, serving every stream attached to it. Used on one event loop."""

    def __init__(
        self,
        model_name: str,
        factory: ModelFactory,
        policy: BatchPolicy,
        metrics: StreamMetrics,
        on_idle: Callable[[ModelWorker], None] | None = None,
    ) -> None:
        self.model_name = model_name
        self.policy = policy
        self._factory = factory
        self._metrics = metrics
        self._on_idle = on_idle
        # One thread: one model call in flight at a time (the FrameModel contract), and a hung model holds one thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-worker:{model_name}")
        self._loaded: asyncio.Future[FrameModel] | None = None
        self._batching: StreamBatchModel | None = None
        self._first_claimed = False
        self._own_models: dict[str, FrameModel] = {}  # models without cross-stream batching: one instance per stream
        self._attached: set[str] = set()
        self._waiting: dict[str, _Waiting] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy_since: float | None = None
        self._frame_cost_s: float | None = None  # EMA of a batch's wall time divided by its frames
        self._batch_s: float | None = None  # EMA of a batch's wall time
        self._closed = False
        self._metric_label = model_name  # the loaded model's own name once known, as the pipelines' metrics use
        self.batches = 0
        self.frames_run = 0

    # -- streams -------------------------------------------------------------------------------------

    def attach(self, stream_id: str) -> WorkerRunner:
        if self._closed:
            raise RuntimeError(f"model worker {self.model_name!r} is closed")
        self._attached.add(stream_id)
        return WorkerRunner(self, stream_id)

    def detach(self, stream_id: str) -> None:
        self._attached.discard(stream_id)
        waiting = self._waiting.pop(stream_id, None)
        if waiting is not None and not waiting.future.done():
            waiting.future.cancel()
        self._own_models.pop(stream_id, None)
        batching = self._batching
        if batching is not None and not self._closed:
            # On the model's own thread, after any batch that still holds this stream's frame.
            self._executor.submit(batching.forget_stream, stream_id)
        if not self._attached and self._on_idle is not None:
            self._on_idle(self)

    @property
    def streams(self) -> set[str]:
        return set(self._attached)

    # -- loading -------------------------------------------------------------------------------------

    async def model_for(self, stream_id: str) -> FrameModel:
        """The model that runs `stream_id`: the one shared instance when it batches across streams, else the first
        instance for the first stream and a new one from the factory for each other."""
        loop = asyncio.get_running_loop()
        if self._loaded is None:
            self._loaded = asyncio.ensure_future(loop.run_in_executor(self._executor, self._factory))
        # shield: a stream that closes while the model loads must not cancel the load the others wait on.
        model = await asyncio.shield(self._loaded)
        self._metric_label = model.info.name
        if isinstance(model, StreamBatchModel):
            self._batching = model
            return model
        if stream_id in self._own_models:
            return self._own_models[stream_id]
        if not self._first_claimed:
            self._first_claimed = True
        else:  # not on the model's thread: a stream joining while a call hangs still loads and then says it waits
            model = await loop.run_in_executor(None, self._factory)
        if stream_id in self._attached:
            self._own_models[stream_id] = model
        return model

    # -- running -------------------------------------------------------------------------------------

    async def submit(self, stream_id: str, frames: FreshestFrame[SourceFrame], seen: int, on_taken: OnTaken) -> Outcome:
        """Wait in line; when the worker next forms a batch, the newest frame of `frames` goes into it."""
        if self._closed:
            raise SlotClosed(f"model worker {self.model_name!r} is closed")
        if stream_id in self._waiting:
            raise RuntimeError(f"stream {stream_id!r} is already waiting for the model")
        if self._task is None:
            self._task = asyncio.create_task(self._run_loop(), name=f"model-worker:{self.model_name}")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(stream_id, frames, seen, on_taken, time.monotonic(), future)
        self._waiting[stream_id] = waiting
        self._wake.set()
        try:
            return await future
        except asyncio.CancelledError:
            if self._waiting.get(stream_id) is waiting:
                del self._waiting[stream_id]
            raise

    def batch_limit(self) -> int:
        """How many streams the next batch may take: the cap, cut to what the measured cost fits in the budget."""
        limit = self.policy.max_batch
        if self._frame_cost_s is not None and self._frame_cost_s > 0:
            limit = min(limit, int(self.policy.latency_budget_s / self._frame_cost_s))
        return max(1, limit)

    def blocked_since(self, stream_id: str) -> float | None:
        """When the batch that `stream_id` waits behind started (None: not waiting, or the worker is free)."""
        return self._busy_since if stream_id in self._waiting else None

    def queue_wait_s(self, now: float) -> float:
        """Expected wait before a frame offered now starts its model run."""
        if self._busy_since is None or self._batch_s is None:
            return 0.0
        return max(0.0, self._batch_s - (now - self._busy_since))

    async def _run_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            jobs = self._take_batch()
            if not jobs:
                continue
            started = time.monotonic()
            self._busy_since = started
            items = [(job.waiting.stream_id, job.model, job.taken.item.frame) for job in jobs]
            try:
                outcomes = await loop.run_in_executor(self._executor, run_batch, self._batching, items)
            except Exception as exc:  # the executor itself refused (shut down): every stream in the batch hears it
                outcomes = [exc] * len(jobs)
            finally:
                self._busy_since = None
            self._account(len(jobs), time.monotonic() - started)
            for job, outcome in zip(jobs, outcomes):
                future = job.waiting.future
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result((job.taken, outcome))
            # Let the streams just served come back in line before the next batch forms; otherwise a stream that
            # happened to wait through this batch would run alone, and the rest just after it.
            await asyncio.sleep(0)

    def _take_batch(self) -> list[_Job]:
        chosen = sorted(self._waiting.values(), key=lambda w: w.since)[: self.batch_limit()]
        jobs = []
        for waiting in chosen:
            del self._waiting[waiting.stream_id]
            if waiting.future.done():
                continue
            item = waiting.frames.latest
            if item is None:  # the stream's slot closed while it waited
                waiting.future.set_exception(SlotClosed("slot is closed"))
                continue
            model = self._batching if self._batching is not None else self._own_models.get(waiting.stream_id)
            if model is None:
                waiting.future.set_exception(ModelError("model not loaded for this stream"))
                continue
            taken = Taken(waiting.frames.seq, item, waiting.frames.seq - waiting.seen - 1)
            try:
                waiting.on_taken(taken)
            except Exception:  # a stream's bookkeeping must not stop the worker that serves the others
                log.exception("on_taken failed", extra={"stream": waiting.stream_id, "model": self.model_name})
            jobs.append(_Job(waiting, taken, model))
        return jobs

    def _account(self, size: int, elapsed_s: float) -> None:
        self.batches += 1
        self.frames_run += size
        per_frame = elapsed_s / size
        self._frame_cost_s = per_frame if self._frame_cost_s is None else 0.8 * self._frame_cost_s + 0.2 * per_frame
        self._batch_s = elapsed_s if self._batch_s is None else 0.8 * self._batch_s + 0.2 * elapsed_s
        self._metrics.model_batch_size.labels(self._metric_label).observe(size)
        self._metrics.model_batch_seconds.labels(self._metric_label).observe(elapsed_s)

    def close(self) -> None:
        """Stop serving: waiting streams hear SlotClosed; a hung call's thread is released when it returns."""
        self._closed = True
        for waiting in self._waiting.values():
            if not waiting.future.done():
                waiting.future.set_exception(SlotClosed(f"model worker {self.model_name!r} closed"))
        self._waiting.clear()
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._own_models.clear()
        self._batching = None


class WorkerRunner:
    """One stream's handle on a shared ModelWorker (a stream.model_runner.ModelRunner)."""

    def __init__(self, worker: ModelWorker, stream_id: str) -> None:
        self.worker = worker
        self.stream_id = stream_id

    async def load(self) -> FrameModel:
        return await self.worker.model_for(self.stream_id)

    async def run_freshest(self, frames: FreshestFrame[SourceFrame], seen: int, on_taken: OnTaken) -> Outcome:
        await frames.next_after(seen)  # wait in line only with a frame to offer
        return await self.worker.submit(self.stream_id, frames, seen, on_taken)

    def blocked_since(self, now: float) -> float | None:
        return self.worker.blocked_since(self.stream_id)

    def queue_wait_s(self, now: float) -> float:
        return self.worker.queue_wait_s(now)

    def close(self) -> None:
        self.worker.detach(self.stream_id)


class ModelWorkers:
    """The model workers of one hub: one per model name, made at a stream's first use of the model and closed when
    its last stream ends (so a later stream loads the model afresh, e.g. after the weights were fixed)."""

    def __init__(self, policy: BatchPolicy, metrics: StreamMetrics) -> None:
        self.policy = policy
        self._metrics = metrics
        self._workers: dict[str, ModelWorker] = {}

    def runner(self, stream_id: str, model_name: str, factory: ModelFactory) -> WorkerRunner:
        worker = self._workers.get(model_name)
        if worker is None:
            worker = ModelWorker(model_name, factory, self.policy, self._metrics, on_idle=self._retire)
            self._workers[model_name] = worker
        return worker.attach(stream_id)

    def get(self, model_name: str) -> ModelWorker | None:
        return self._workers.get(model_name)

    def _retire(self, worker: ModelWorker) -> None:
        if self._workers.get(worker.model_name) is worker:
            del self._workers[worker.model_name]
        worker.close()

    def close(self) -> None:
        for worker in list(self._workers.values()):
            worker.close()
        self._workers.clear()


def run_batch(
    batching: StreamBatchModel | None, items: list[tuple[str, FrameModel, av.VideoFrame]]
) -> list[FrameFindings | Exception]:
    """Runs on the worker's thread: one outcome per (stream, model, frame), findings or the error that stream hears.

    A cross-stream batch fails or succeeds as a whole (one network run); models without it run frame by frame, so one
    stream's bad frame fails that stream alone."""
    if batching is None:
        outcomes: list[FrameFindings | Exception] = []
        for _stream, model, frame in items:
            try:
                outcomes.append(run_model(model, frame))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes
    try:
        frames, convert_ms = [], []
        for stream, _model, frame in items:
            started = time.perf_counter()
            frames.append(StreamFrame(stream, frame_to_array(frame, "rgb24")))
            convert_ms.append((time.perf_counter() - started) * 1000)
        found = batching.predict_streams(frames)
        if len(found) != len(frames):
            raise ModelError(f"model returned {len(found)} results for a batch of {len(frames)} frames")
    except Exception as exc:
        return [exc] * len(items)
    return [dataclasses.replace(f, inference_ms=f.inference_ms + ms) for f, ms in zip(found, convert_ms)]
