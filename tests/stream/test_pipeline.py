"""The pipeline on its own, without WebRTC: frames pushed in, annotated frames pulled out."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import av
import numpy as np

from stream.metrics import StreamMetrics
from stream.pipeline import PipelineConfig, StreamPipeline
from stream.tracks import AnnotatedTrack, overlay_state
from tests.helpers.fakes import BoxModel


def _frame() -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((240, 320, 3), 90, np.uint8), format="bgr24").reformat(format="yuv420p")


async def _feed(pipeline: StreamPipeline, fps: float, count: int) -> None:
    for _ in range(count):
        pipeline.push_frame(_frame())
        await asyncio.sleep(1 / fps)


async def test_sync_mode_draws_each_frame_with_its_own_findings():
    metrics = StreamMetrics()
    pipeline = StreamPipeline("s", lambda: BoxModel(delay_s=0.03), PipelineConfig(sync_wait_ms=500), metrics)
    pipeline.viewers = 1
    pipeline.start()
    with ThreadPoolExecutor(1) as pool:
        track = AnnotatedTrack(pipeline, metrics, pool)
        feeder = asyncio.create_task(_feed(pipeline, fps=10, count=30))
        matched = 0
        for _ in range(8):
            await track.recv()
            result = pipeline.latest_result
            matched += result is not None and result.seq == track.last_sent_seq
        feeder.cancel()
        await pipeline.close()
    assert matched >= 7, f"only {matched} of 8 frames carried their own findings in sync mode"


async def test_findings_fade_with_age_and_vanish_when_stale():
    config = PipelineConfig(fade_after_s=0.2, stale_after_s=0.6)
    pipeline = StreamPipeline("s", lambda: BoxModel(), config, StreamMetrics())
    pipeline.start()
    pipeline.push_frame(_frame())
    result = None
    for _ in range(100):
        await asyncio.sleep(0.02)
        result = pipeline.latest_result
        if result is not None:
            break
    assert result is not None
    source = result.source
    fresh = overlay_state(pipeline, source)
    half = overlay_state(pipeline, replace(source, arrival=source.arrival + 0.4))
    assert fresh.opacity == 1.0 and 0.4 < half.opacity < 0.6
    assert "age 400 ms" in half.latency_text
    await pipeline.close()


async def test_model_that_fails_to_load_reports_why_and_frames_still_flow():
    def broken():
        raise FileNotFoundError("weights/polyp.onnx is missing")

    metrics = StreamMetrics()
    pipeline = StreamPipeline("s", broken, PipelineConfig(), metrics)
    pipeline.viewers = 1
    pipeline.start()
    events: list[str] = []
    pipeline.add_listener(events.append)
    with ThreadPoolExecutor(1) as pool:
        track = AnnotatedTrack(pipeline, metrics, pool)
        feeder = asyncio.create_task(_feed(pipeline, fps=30, count=20))
        frames = [await asyncio.wait_for(track.recv(), 2) for _ in range(10)]
        feeder.cancel()
    assert len(frames) == 10
    assert not pipeline.status.available
    assert "model failed to load: FileNotFoundError: weights/polyp.onnx is missing" == pipeline.status.reason
    assert any("weights/polyp.onnx is missing" in e for e in events)
    image = frames[-1].to_ndarray(format="bgr24")
    assert image[3, 160, 2] > 150 and image[3, 160, 0] < 80, "red banner on the frame"
    await pipeline.close()


async def test_inference_rate_cap_paces_the_model_but_not_the_video():
    model = BoxModel()
    metrics = StreamMetrics()
    pipeline = StreamPipeline("s", lambda: model, PipelineConfig(max_inference_fps=5), metrics)
    pipeline.viewers = 1
    pipeline.start()
    with ThreadPoolExecutor(1) as pool:
        track = AnnotatedTrack(pipeline, metrics, pool)
        feeder = asyncio.create_task(_feed(pipeline, fps=30, count=45))
        frames = 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        while loop.time() - start < 1.0:
            await asyncio.wait_for(track.recv(), 2)
            frames += 1
        feeder.cancel()
    await pipeline.close()
    assert model.calls <= 7, f"{model.calls} model calls in 1 s with a cap of 5/s"
    assert frames >= 20, f"only {frames} frames out in 1 s at 30 fps in"
