"""A stream whose content changes: the content gate pauses the findings (amber), then they come back by themselves.

The first test uses a tiny gated graph (red frames are known content, blue are
foreign); the second the shipped polyp model on real frames: the bundled
colonoscopy clip, then the laparoscopy clip, then colonoscopy again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np

from perception.segmentation_model import SegmentationModel
from stream.events import parse_server_event
from stream.metrics import StreamMetrics
from stream.pipeline import PipelineConfig, StreamPipeline
from stream.tracks import AnnotatedTrack

REPO = Path(__file__).resolve().parents[2]
LAPAROSCOPY = REPO / "scopecast" / "assets" / "laparoscopy-rvimlab-720p25.mp4"
COLONOSCOPY = REPO / "scopecast" / "assets" / "colonoscopy-sample.mp4"


def _clip_frames(path: Path, count: int, stride: int = 3) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % stride == 0:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return out


def _video(rgb: np.ndarray) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


async def _run_phases(model_factory: Callable, phases: list[list[np.ndarray]], fps: float = 15.0):
    """Feed each phase's frames in turn; returns (events, per-phase (status kind, last output frame BGR))."""
    metrics = StreamMetrics()
    pipeline = StreamPipeline("s", model_factory, PipelineConfig(), metrics)
    pipeline.viewers = 1
    events: list[str] = []
    pipeline.add_listener(events.append)
    pipeline.start()
    seen = []
    with ThreadPoolExecutor(1) as pool:
        track = AnnotatedTrack(pipeline, metrics, pool)
        for frames in phases:
            for rgb in frames:
                pipeline.push_frame(_video(rgb))
                await asyncio.wait_for(track.recv(), 5)
                await asyncio.sleep(1 / fps)
            await asyncio.sleep(0.3)  # let the model finish the phase's newest frame
            pipeline.push_frame(_video(frames[-1]))
            last = await asyncio.wait_for(track.recv(), 5)
            seen.append((pipeline.status.kind, pipeline.status.reason, last.to_ndarray(format="bgr24")))
    await pipeline.close()
    return [parse_server_event(e) for e in events], seen


def _is_amber(bgr: tuple[int, int, int]) -> bool:
    b, g, r = (int(v) for v in bgr)
    return r > 200 and 110 < g < 210 and b < 80


async def test_foreign_content_turns_amber_withholds_findings_and_recovers(tmp_path):
    from tests.perception.perception_testutil import GATED_META, make_onnx, red_frame

    path = make_onnx(tmp_path / "gated.onnx", sidecar=GATED_META, gate=True)
    known = red_frame(320, 240, [(60, 60, 160, 160)])
    foreign = known.copy()
    foreign[..., 2] = 220
    events, seen = await _run_phases(lambda: SegmentationModel(path), [[known] * 12, [foreign] * 12, [known] * 12])
    kinds = [kind for kind, _, _ in seen]
    assert kinds == ["live", "content", "live"], seen
    assert seen[1][1] == "content does not look like red things: toy model paused"
    assert _is_amber(seen[1][2][4, 160]), f"banner colour {seen[1][2][4, 160]} is not amber"
    assert not _is_amber(seen[2][2][4, 160])
    states = [e.state for e in events if e.type == "status"]
    assert states.count("content") == 1 and states[-1] == "live"
    findings = [e for e in events if e.type == "findings"]
    assert any(e.content.in_domain is False and e.objects == [] for e in findings)
    assert all(e.objects == [] for e in findings if e.content.in_domain is False)
    assert findings[-1].content.in_domain is True and len(findings[-1].objects) == 1


async def test_shipped_polyp_model_pauses_on_laparoscopy_and_resumes_on_colonoscopy():
    from tests.perception.perception_testutil import shipped

    path = shipped("polyp")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert "content_gate" in meta, "the shipped polyp model has no content gate"
    colon, lap = _clip_frames(COLONOSCOPY, 16), _clip_frames(LAPAROSCOPY, 16)
    events, seen = await _run_phases(lambda: SegmentationModel(path), [colon, lap, colon[::-1]], fps=10)
    assert [kind for kind, _, _ in seen] == ["live", "content", "live"], [(k, r) for k, r, _ in seen]
    assert "content does not look like colonoscopy: polyp model paused" in seen[1][1]
    findings = [e for e in events if e.type == "findings"]
    foreign = [e for e in findings if e.content is not None and e.content.in_domain is False]
    assert foreign and all(e.objects == [] for e in foreign)
