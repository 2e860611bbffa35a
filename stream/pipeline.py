"""One stream's frame path: source → freshest-frame slot → model runner → findings → overlay → viewers.

The video never waits for the model. Incoming frames land in a FreshestFrame
slot; the model worker takes the newest one whenever it is free; the output
track sends every incoming frame (at the source's rate) drawn with whatever
findings are newest, faded by their age. A model that fails, hangs or falls
behind turns the overlay into "AI unavailable" while frames keep flowing.

The model runs on a thread of the stream's own (stream.model_runner) or on a
worker shared by every stream of that model (stream.model_worker); either way
this pipeline keeps its own status, watchdog, content gate and registration.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import av

from perception.findings import FrameFindings
from perception.model import FrameModel
from stream.events import StatusEvent, findings_event
from stream.freshest import FreshestFrame, SlotClosed, Taken
from stream.metrics import StreamMetrics
from stream.model_results import ModelResult, SourceFrame
from stream.model_runner import ModelRunner, OwnThreadRunner
from stream.registration import FrameRegistrar

log = logging.getLogger(__name__)

EventListener = Callable[[str], None]  # receives one serialised event (JSON text)

# Frames kept with their findings so a question can name a recent frame; each
# holds a decoded frame, so keep few.
RECENT_RESULTS = 8


@dataclass(frozen=True)
class PipelineConfig:
    hang_timeout_s: float = 2.0  # a model call running longer than this is reported as not responding
    stale_after_s: float = 1.0  # findings older than this (relative to the newest frame) are not shown
    fade_after_s: float = 0.3  # findings start fading after this age
    sync_wait_ms: int = 0  # >0: evaluation mode, each output frame waits this long for its own findings
    error_backoff_s: float = 0.5  # pause after a failed model call, so a broken model does not spin
    annotate: bool = True  # False: plain relay (no model, no overlay), the baseline of the stream benchmark
    max_inference_fps: float = 0.0  # >0: run the model at most this often, leaving CPU to decode/encode
    # Registration: an outgoing frame waits up to this long for its own findings when the model is expected to deliver
    # them in time (by its measured latency); otherwise the newest findings are carried onto it by motion.
    register_wait_ms: float = 40.0
    pause_without_viewers: bool = False  # server sources: run no model while nobody watches
    # Content gate hysteresis: findings pause after this many consecutive frames the model judges foreign and come
    # back after this many it knows, so the light does not flicker on a borderline frame.
    content_pause_after: int = 2
    content_resume_after: int = 3


@dataclass(frozen=True)
class AiStatus:
    """`kind`: "live" (findings shown), "content" (the model works but the content is not what it knows:
    findings withheld, amber) or "down" (no findings: loading, failed, hung or too slow, red)."""

    available: bool
    reason: str = ""
    kind: Literal["live", "content", "down", ""] = ""  # "": derived from `available`

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", "live" if self.available else "down")


class StreamPipeline:
    """Owns one stream's slot, model runner and status watchdog."""

    def __init__(
        self,
        stream_id: str,
        model_factory: Callable[[], FrameModel] | None,
        config: PipelineConfig,
        metrics: StreamMetrics,
        runner: ModelRunner | None = None,
    ) -> None:
        """`runner`: how the model runs (e.g. a shared worker's); None: on a thread of this stream's own, built from
        `model_factory` (None for both: no model)."""
        self.stream_id = stream_id
        self.config = config
        self.frames: FreshestFrame[SourceFrame] = FreshestFrame()
        self._metrics = metrics
        if runner is None and model_factory is not None:
            runner = OwnThreadRunner(stream_id, model_factory)
        self._runner = runner
        self._model: FrameModel | None = None
        self._model_error: str | None = None
        self._call_error: str | None = None
        self._inflight_since: float | None = None
        self._first_frame_at: float | None = None
        self._result: ModelResult | None = None
        self._recent: collections.deque[ModelResult] = collections.deque(maxlen=RECENT_RESULTS)
        self._result_changed = asyncio.Event()
        self._status = AiStatus(False, "starting")
        self._status_json = self._status_event(self._status).model_dump_json()
        self._listeners: set[EventListener] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._ended = asyncio.Event()
        self._viewers = 0
        self._viewers_changed = asyncio.Event()
        self._inflight_seq: int | None = None
        self._next_run_at = 0.0  # monotonic time before which the paced model will not start
        self._latency_ema_s: float | None = None  # the model's wall time per frame, pre/post included
        self._resumed_at: float | None = None
        self._content_streak = 0  # consecutive frames on the same side of the gate (+ known, - foreign)
        self._content_paused = False
        self.registrar = FrameRegistrar()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._model_loop(), name=f"model:{self.stream_id}"),
            asyncio.create_task(self._watchdog_loop(), name=f"watchdog:{self.stream_id}"),
        ]

    async def close(self) -> None:
        self.frames.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._runner is not None:
            self._runner.close()
        self._listeners.clear()
        self._recent.clear()
        # Sessions, tracks and this pipeline point at each other; dropping the heavy parts here frees them by reference
        # counting instead of waiting for a full garbage collection.
        self._result = None
        self._model = None
        self.registrar.clear()
        self._ended.set()
        self._metrics.forget_stream(self.stream_id)

    @property
    def ended(self) -> asyncio.Event:
        return self._ended

    @property
    def clock_origin(self) -> float:
        """Arrival time of the stream's first frame: every output's timestamps count from it."""
        return self._first_frame_at if self._first_frame_at is not None else 0.0

    @property
    def viewers(self) -> int:
        return self._viewers

    @viewers.setter
    def viewers(self, count: int) -> None:
        was_watched = self._viewers > 0
        self._viewers = max(0, count)
        if (self._viewers > 0) != was_watched:
            self._viewers_changed.set()

    @property
    def paused(self) -> bool:
        """True while a source nobody watches runs no model."""
        return self.config.pause_without_viewers and self._viewers == 0

    # -- input -------------------------------------------------------------------------------

    def push_frame(self, frame: av.VideoFrame) -> None:
        """Offer a new frame; called on the event loop by a source or a track reader."""
        now = time.monotonic()
        if self._first_frame_at is None:
            self._first_frame_at = now
        try:
            self.frames.put(SourceFrame(frame, now, time.time()))
        except SlotClosed:
            return
        self._metrics.frames_in.labels(self.stream_id).inc()

    # -- findings and status ---------------------------------------------------------------

    @property
    def latest_result(self) -> ModelResult | None:
        return self._result

    def recent_result(self, frame_seq: int) -> ModelResult | None:
        """The result of frame `frame_seq` if it is among the last few processed, else None."""
        return next((r for r in self._recent if r.seq == frame_seq), None)

    def recent_frame_seqs(self) -> list[int]:
        return [r.seq for r in self._recent]

    @property
    def status(self) -> AiStatus:
        return self._status

    @property
    def status_json(self) -> str:
        """The current status event, serialised (for viewers that join without a listener of their own here)."""
        return self._status_json

    def add_listener(self, listener: EventListener) -> Callable[[], None]:
        """Subscribe to serialised events; the current status is delivered at once."""
        self._listeners.add(listener)
        listener(self._status_json)
        return lambda: self._listeners.discard(listener)

    def announce(self, message: str) -> None:
        """Send an event (serialised) to everyone following this stream's events, e.g. that it is being recorded."""
        self._broadcast(message)

    async def wait_for_result(self, seq: int, timeout_s: float) -> ModelResult | None:
        """Wait until a result for frame `seq` or newer exists (synchronous evaluation mode)."""
        deadline = time.monotonic() + timeout_s
        while self._result is None or self._result.seq < seq:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            event = self._result_changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                break
        return self._result

    def expected_wait_s(self, seq: int, now: float) -> float | None:
        """How long until findings of frame `seq` exist, by the model's measured latency; None when they never will
        (no model yet, paused, hung, or the model will take a newer frame)."""
        ema = self._latency_ema_s
        if ema is None or self._model is None or self.paused or self.frames.seq != seq and self._inflight_seq != seq:
            return None
        if self._inflight_seq == seq and self._inflight_since is not None:
            return max(0.0, ema - (now - self._inflight_since))
        if self._inflight_since is not None:  # busy with an older frame; ours is the newest and comes next
            return max(0.0, ema - (now - self._inflight_since)) + ema
        queued = self._runner.queue_wait_s(now) if self._runner is not None else 0.0
        return max(self._next_run_at - now, queued, 0.0) + ema

    async def wait_for_own_result(self, seq: int) -> None:
        """Give frame `seq` its own findings when they are expected within `register_wait_ms`; return at once when
        they are not (the video's rate never waits on a slow model)."""
        budget = self.config.register_wait_ms / 1000
        if budget <= 0 or (self._result is not None and self._result.seq >= seq):
            return
        expected = self.expected_wait_s(seq, time.monotonic())
        if expected is None or expected > budget:
            return
        await self.wait_for_result(seq, budget)

    def compute_status(self, now: float) -> AiStatus:
        if self._model_error is not None:
            return AiStatus(False, f"model failed to load: {self._model_error}")
        if self._model is None:
            return AiStatus(False, "model loading")
        busy_since = self._inflight_since
        if busy_since is None and self._runner is not None:  # waiting behind another stream's call on a shared model
            busy_since = self._runner.blocked_since(now)
        if busy_since is not None and now - busy_since > self.config.hang_timeout_s:
            return AiStatus(False, f"model not responding for {now - busy_since:.1f} s")
        if self._call_error is not None:
            return AiStatus(False, f"model error: {self._call_error}")
        if self.paused:
            return AiStatus(True, "paused: nobody is watching")
        newest = self.frames.latest
        if newest is None:
            return AiStatus(True)
        if self._resumed_at is not None and now - self._resumed_at < self.config.stale_after_s:
            return AiStatus(True)  # just resumed for a viewer: the next findings are one model run away
        if self._result is None:
            waited = now - (self._first_frame_at or now)
            if waited > self.config.stale_after_s:
                return AiStatus(False, f"no findings yet: waited {waited:.1f} s")
            return AiStatus(True)
        lag = newest.arrival - self._result.source.arrival
        if lag > self.config.stale_after_s:
            return AiStatus(False, f"model too slow: findings {lag:.1f} s behind the video")
        content = self._result.findings.content
        if self._content_paused and content is not None:
            model = self._result.findings.model.name
            return AiStatus(False, f"content does not look like {content.content}: {model} model paused", "content")
        if content is not None and not content.available:
            return AiStatus(True, content.reason or "content check unavailable")
        return AiStatus(True)

    def _judge_content(self, findings: FrameFindings) -> FrameFindings:
        """Advance the content hysteresis with one result; while paused, its findings are not shown."""
        content = findings.content
        if content is None or content.in_domain is None:
            self._content_streak, self._content_paused = 0, False
            return findings
        if content.in_domain:
            self._content_streak = max(1, self._content_streak + 1)
            if self._content_paused and self._content_streak >= self.config.content_resume_after:
                self._content_paused = False
        else:
            self._content_streak = min(-1, self._content_streak - 1)
            if -self._content_streak >= self.config.content_pause_after:
                self._content_paused = True
        if self._content_paused and findings.objects:
            return dataclasses.replace(findings, objects=())
        return findings

    # -- workers -------------------------------------------------------------------------------

    async def _model_loop(self) -> None:
        runner = self._runner
        if runner is None:
            self._model_error = "no model configured"
            return
        try:
            self._model = await runner.load()
        except Exception as exc:
            self._model_error = f"{type(exc).__name__}: {exc}"
            log.error("model load failed", extra={"stream": self.stream_id, "error": self._model_error})
            return
        model_name = self._model.info.name
        seen = 0
        while True:
            if self.paused:
                await self._wait_for_viewers()
                continue
            started = time.monotonic()
            try:
                taken, findings = await runner.run_freshest(self.frames, seen, self._on_taken)
            except SlotClosed:
                return
            except Exception as exc:
                if self._inflight_seq is not None:
                    seen = self._inflight_seq
                self._inflight_since = None
                self._inflight_seq = None
                self._call_error = f"{type(exc).__name__}: {exc}"[:300]
                self._metrics.model_errors.labels(self.stream_id).inc()
                log.warning("model call failed", extra={"stream": self.stream_id, "error": self._call_error})
                await asyncio.sleep(self.config.error_backoff_s)
                continue
            seen = taken.seq
            started = self._inflight_since if self._inflight_since is not None else started
            self._inflight_since = None
            self._inflight_seq = None
            elapsed = time.monotonic() - started
            self._latency_ema_s = elapsed if self._latency_ema_s is None else 0.8 * self._latency_ema_s + 0.2 * elapsed
            self._call_error = None
            self._metrics.inference_seconds.labels(self.stream_id, model_name).observe(findings.inference_ms / 1000)
            self._metrics.findings.labels(self.stream_id).inc()
            self._metrics.model_frames.labels(model_name).inc()
            findings = self._judge_content(findings)
            self._result = ModelResult(taken.seq, taken.item, findings)
            self._recent.append(self._result)
            self._result_changed.set()
            self._result_changed = asyncio.Event()
            self._refresh_status()
            event = findings_event(self.stream_id, taken.seq, taken.item.frame.pts, taken.item.capture_time, findings)
            self._broadcast(event.model_dump_json())
            if self.config.max_inference_fps > 0:
                # Pace the model; the newest frame is taken when it is next free, so pacing never adds lag.
                self._next_run_at = started + 1.0 / self.config.max_inference_fps
                await asyncio.sleep(max(0.0, self._next_run_at - time.monotonic()))

    def _on_taken(self, taken: Taken[SourceFrame]) -> None:
        """A frame went into a model run: from now on its findings are in flight (and a hang is timed from here)."""
        self._inflight_since = time.monotonic()
        self._inflight_seq = taken.seq
        if taken.skipped:
            self._metrics.frames_dropped.labels(self.stream_id, "model").inc(taken.skipped)

    async def _wait_for_viewers(self) -> None:
        log.info("model paused: no viewers", extra={"stream": self.stream_id})
        self._refresh_status()
        while self.paused:
            self._viewers_changed.clear()
            await self._viewers_changed.wait()
        self._resumed_at = time.monotonic()
        log.info("model resumed for a viewer", extra={"stream": self.stream_id})

    async def _watchdog_loop(self) -> None:
        while True:
            self._refresh_status()
            await asyncio.sleep(0.1)

    def _refresh_status(self) -> None:
        status = self.compute_status(time.monotonic())
        if status.kind == self._status.kind and _same_kind(status.reason, self._status.reason):
            return
        self._status = status
        self._metrics.ai_available.labels(self.stream_id).set(1 if status.available else 0)
        self._status_json = self._status_event(status).model_dump_json()
        log.info("ai status", extra={"stream": self.stream_id, "available": status.available, "reason": status.reason})
        self._broadcast(self._status_json)

    def _status_event(self, status: AiStatus) -> StatusEvent:
        return StatusEvent(
            stream_id=self.stream_id,
            ai_available=status.available,
            state=status.kind,
            reason=status.reason,
            time=time.time(),
        )

    def _broadcast(self, message: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(message)
            except Exception:  # one broken viewer must not stop the others
                log.exception("event listener failed", extra={"stream": self.stream_id})
                self._listeners.discard(listener)


def _same_kind(a: str, b: str) -> bool:
    # "model not responding for 2.1 s" and "... 2.2 s" are the same state: do not re-announce
    # every tick, only when the kind of problem changes.
    return a.split(":")[0].split(" for ")[0] == b.split(":")[0].split(" for ")[0]
