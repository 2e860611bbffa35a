"""Many streams, one model: the shared model worker batches the freshest frame of each waiting stream, fairly.

Real pipelines (slots, status, watchdog) feed one ModelWorker; the fake batch model sleeps like a network run (a fixed
part plus a part per frame), so the timing here comes from the model, not from this machine's CPU load.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import av
import numpy as np
import pytest

from stream.metrics import StreamMetrics
from stream.model_worker import BatchPolicy, ModelWorkers
from stream.pipeline import PipelineConfig, StreamPipeline
from tests.helpers.fakes import BatchBoxModel, BoxModel, CountingFactory, HangingModel


def _frame() -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((120, 160, 3), 90, np.uint8), format="bgr24").reformat(format="yuv420p")


async def _feed(pipeline: StreamPipeline, fps: float) -> None:
    while True:
        pipeline.push_frame(_frame())
        await asyncio.sleep(1 / fps)


class Streams:
    """N pipelines on one ModelWorkers, each fed at its own rate; closed (and the feeders stopped) on exit."""

    def __init__(self, factory: CountingFactory, policy: BatchPolicy = BatchPolicy(), **config: object) -> None:
        self.metrics = StreamMetrics()
        self.workers = ModelWorkers(policy, self.metrics)
        self.factory = factory
        self.config = PipelineConfig(**config)  # type: ignore[arg-type]
        self.pipelines: dict[str, StreamPipeline] = {}
        self._feeders: list[asyncio.Task[None]] = []

    def add(self, stream_id: str, fps: float = 30.0, **config: object) -> StreamPipeline:
        cfg = dataclasses.replace(self.config, **config)  # type: ignore[arg-type]
        runner = self.workers.runner(stream_id, "batchbox", self.factory)
        pipeline = StreamPipeline(stream_id, self.factory, cfg, self.metrics, runner)
        pipeline.viewers = 1
        pipeline.start()
        self.pipelines[stream_id] = pipeline
        self._feeders.append(asyncio.create_task(_feed(pipeline, fps)))
        return pipeline

    def findings(self, stream_id: str) -> float:
        return self.metrics.findings.labels(stream_id)._value.get()

    async def close(self) -> None:
        for feeder in self._feeders:
            feeder.cancel()
        for pipeline in self.pipelines.values():
            await pipeline.close()
        self.workers.close()


async def _until(check, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_one_load_for_all_streams_and_batches_grow_under_load():
    model = BatchBoxModel(base_s=0.03, per_frame_s=0.01)
    streams = Streams(CountingFactory(lambda: model))
    try:
        for i in range(4):
            streams.add(f"s{i}")
        await _until(lambda: all(streams.findings(f"s{i}") >= 10 for i in range(4)))
        await streams.pipelines.pop("s0").close()  # a stream that ends while the others go on
        await _until(lambda: "s0" in model.forgotten)
    finally:
        await streams.close()
    assert streams.factory.loads == 1, "the model must load once for every stream that runs it"
    steady = model.batches[3:]
    assert steady, "no batches ran"
    sizes = [len(b) for b in steady]
    # Four streams at 30 fps and a 70 ms batch: each is waiting again by the next batch, so nearly all go together.
    assert np.median(sizes) >= 3, f"batches did not grow under load: {sizes}"
    assert all(len(set(b)) == len(b) for b in model.batches), "one stream twice in a batch"


async def test_a_stream_alone_runs_batches_of_one():
    model = BatchBoxModel(base_s=0.02, per_frame_s=0.0)
    streams = Streams(CountingFactory(lambda: model))
    try:
        streams.add("alone")
        await _until(lambda: streams.findings("alone") >= 10)
    finally:
        await streams.close()
    assert {len(b) for b in model.batches} == {1}
    sizes = streams.metrics.registry.get_sample_value("scopecast_model_batch_size_count", {"model": "batchbox"})
    assert sizes is not None and sizes >= 10


async def test_slow_streams_never_slow_the_others():
    """A stream slow to come back for more (paced at 3 runs/s) and one whose camera gives 2 fps: the fast streams keep
    the rate that the same fast streams get without them, measured side by side at the same time (so a busy machine
    slows both alike), and every stream still gets findings."""
    plain_model, mixed_model = (
        BatchBoxModel(base_s=0.03, per_frame_s=0.01),
        BatchBoxModel(base_s=0.03, per_frame_s=0.01),
    )
    plain, mixed = Streams(CountingFactory(lambda: plain_model)), Streams(CountingFactory(lambda: mixed_model))
    try:
        for i in range(3):
            plain.add(f"fast{i}")
            mixed.add(f"fast{i}")
        mixed.add("paced", max_inference_fps=3)
        mixed.add("trickle", fps=2)
        await asyncio.sleep(0.5)
        sets = (plain, mixed)
        before = [{s: streams.findings(s) for s in streams.pipelines} for streams in sets]
        batches_before = len(mixed_model.batches)
        await asyncio.sleep(3.0)
        alone, together = (
            {s: (streams.findings(s) - counts[s]) / 3.0 for s in streams.pipelines}
            for streams, counts in zip(sets, before)
        )
        batches = mixed_model.batches[batches_before:]
    finally:
        await plain.close()
        await mixed.close()
    for i in range(3):
        name = f"fast{i}"
        assert together[name] >= 0.75 * alone[name], (
            f"{name}: {together[name]:.1f}/s beside slow streams, {alone[name]:.1f}/s without them"
        )
    assert 1.0 <= together["paced"] <= 3.5 and 0.5 <= together["trickle"] <= 2.5, together
    # The fast streams are in (nearly) every batch; the slow ones only when they have something to run.
    counts = {s: sum(s in b for b in batches) for s in together}
    assert min(counts[f"fast{i}"] for i in range(3)) >= 0.8 * len(batches), counts


async def test_a_small_cap_serves_the_longest_waiting_first_so_no_stream_starves():
    model = BatchBoxModel(base_s=0.02, per_frame_s=0.0)
    streams = Streams(CountingFactory(lambda: model), BatchPolicy(max_batch=2))
    try:
        for i in range(5):
            streams.add(f"s{i}")
        await _until(lambda: len(model.batches) >= 40)
    finally:
        await streams.close()
    assert max(len(b) for b in model.batches) == 2
    counts = [sum(f"s{i}" in b for b in model.batches[5:]) for i in range(5)]
    assert min(counts) >= 0.7 * max(counts), f"unfair shares of the model: {counts}"


async def test_the_latency_budget_caps_the_batch_by_measured_cost():
    # 60 ms a frame and a 130 ms budget: at most two frames a batch, however many streams wait.
    model = BatchBoxModel(base_s=0.0, per_frame_s=0.06)
    streams = Streams(CountingFactory(lambda: model), BatchPolicy(max_batch=8, latency_budget_s=0.13))
    try:
        for i in range(5):
            streams.add(f"s{i}")
        await _until(lambda: len(model.batches) >= 12, timeout_s=10)
        served = [streams.findings(f"s{i}") for i in range(5)]
    finally:
        await streams.close()
    later = [len(b) for b in model.batches[3:]]
    assert max(later) <= 2, f"the budget did not cap the batch: {later}"
    assert min(served) > 0, served


async def test_a_failing_batch_is_reported_on_every_stream_in_it_and_they_recover():
    model = BatchBoxModel()
    streams = Streams(CountingFactory(lambda: model), error_backoff_s=0.1)
    try:
        pipelines = [streams.add(f"s{i}") for i in range(3)]
        await _until(lambda: all(p.status.kind == "live" and p.latest_result is not None for p in pipelines))
        model.fail = True
        await _until(lambda: all(p.status.reason.startswith("model error: RuntimeError") for p in pipelines))
        for i in range(3):
            assert streams.metrics.model_errors.labels(f"s{i}")._value.get() >= 1
        model.fail = False
        await _until(lambda: all(p.status.kind == "live" for p in pipelines))
    finally:
        await streams.close()


async def test_a_hung_batch_is_reported_on_every_stream_waiting_on_it():
    model = BatchBoxModel()
    streams = Streams(CountingFactory(lambda: model), hang_timeout_s=0.3, stale_after_s=5.0, fade_after_s=1.0)
    try:
        pipelines = [streams.add(f"s{i}") for i in range(3)]
        await _until(lambda: all(p.latest_result is not None for p in pipelines))
        model.hang.set()
        await _until(lambda: all(p.status.reason.startswith("model not responding") for p in pipelines))
        late = streams.add("late")  # joins while the model hangs: it waits behind the hung batch, and says so
        await _until(lambda: late.status.reason.startswith("model not responding"))
        model.release.set()
        await _until(lambda: all(p.status.kind == "live" for p in [*pipelines, late]))
        await _until(lambda: streams.findings("late") > 0)
    finally:
        model.release.set()
        await streams.close()


async def test_models_without_cross_stream_batching_get_an_instance_per_stream_on_the_shared_thread():
    factory = CountingFactory(lambda: BoxModel(delay_s=0.01))
    streams = Streams(factory)
    try:
        for i in range(3):
            streams.add(f"s{i}")
        await _until(lambda: all(streams.findings(f"s{i}") >= 5 for i in range(3)))
    finally:
        await streams.close()
    assert factory.loads == 3  # tracker state is per instance, so each stream needs its own
    sizes = streams.metrics.registry.get_sample_value("scopecast_model_batch_size_sum", {"model": "box"})
    count = streams.metrics.registry.get_sample_value("scopecast_model_batch_size_count", {"model": "box"})
    assert sizes is not None and count is not None and sizes / count > 1.2, "frames of waiting streams were not grouped"


async def test_a_model_that_fails_to_load_is_reported_on_every_stream():
    def broken():
        raise FileNotFoundError("weights/polyp.onnx is missing")

    streams = Streams(CountingFactory(broken))
    try:
        pipelines = [streams.add(f"s{i}") for i in range(2)]
        await _until(lambda: all("model failed to load" in p.status.reason for p in pipelines))
    finally:
        await streams.close()
    assert streams.factory.loads == 1
    assert "weights/polyp.onnx is missing" in pipelines[0].status.reason


async def test_the_last_stream_leaving_retires_the_worker():
    model = BatchBoxModel()
    streams = Streams(CountingFactory(lambda: model))
    streams.add("only")
    await _until(lambda: streams.findings("only") > 0)
    assert streams.workers.get("batchbox") is not None
    await streams.close()
    assert streams.workers.get("batchbox") is None


def test_bad_batch_policy_is_refused_with_its_reason():
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        BatchPolicy(max_batch=0)
    with pytest.raises(ValueError, match="latency_budget_s must be positive"):
        BatchPolicy(latency_budget_s=0)


async def test_a_stream_waiting_behind_a_batch_expects_that_batch_to_finish_first():
    """Registration waits for a frame's own findings only when they are due in time: a frame that waits in line
    behind another stream's batch is due after that batch, not after one model run."""
    model = BatchBoxModel(base_s=0.15, per_frame_s=0.0)
    streams = Streams(CountingFactory(lambda: model))
    try:
        streams.add("busy")
        paced = streams.add("paced", max_inference_fps=4)  # comes back between the busy stream's batches
        worker = streams.workers.get("batchbox")
        assert worker is not None
        await _until(lambda: streams.findings("paced") >= 2)
        seen = []
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            now = time.monotonic()
            if worker.blocked_since("paced") is not None and now - worker.blocked_since("paced") < 0.1:
                expected = paced.expected_wait_s(paced.frames.seq, now)
                assert expected is not None
                seen.append(expected)
            await asyncio.sleep(0.005)
    finally:
        await streams.close()
    assert seen, "the paced stream never waited behind the busy one"
    # One run takes 0.15 s; the batch ahead has at least 0.05 s to go (it started under 0.1 s ago).
    assert min(seen) >= 0.15 + 0.04, f"expected waits {seen}: the batch ahead was not counted"


async def test_a_hung_call_of_a_model_without_batching_is_reported_on_every_stream_behind_it():
    model = HangingModel(hang_on_call=6)
    streams = Streams(CountingFactory(lambda: model), hang_timeout_s=0.3, stale_after_s=5.0, fade_after_s=1.0)
    try:
        pipelines = [streams.add(f"s{i}") for i in range(2)]
        await _until(lambda: all(p.status.reason.startswith("model not responding") for p in pipelines))
        late = streams.add("late")  # its own instance loads off the hung thread, then it waits in line and says so
        await _until(lambda: late.status.reason.startswith("model not responding"))
        model.release.set()
        await _until(lambda: all(p.status.kind == "live" for p in [*pipelines, late]))
    finally:
        model.release.set()
        await streams.close()
