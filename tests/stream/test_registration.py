"""The overlay sits on the frame it is drawn on, measured over loopback WebRTC with `scopecast bench overlay`'s own
measurement: a synthetic sequence whose object moves and whose true masks are known; and a source runs no model
while nobody watches."""

from __future__ import annotations

import asyncio
import time

import cv2
import numpy as np
import pytest

from perception.findings import Finding, FrameFindings, ModelInfo
from scopecast.app import create_app
from scopecast.assets import SAMPLE_CLIP
from scopecast.bench.overlay import Sequence, iou, measure, summarise
from scopecast.settings import Settings
from stream.testing import client
from tests.helpers.fakes import BoxModel, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.stream_access import CLINICIAN_TOKEN, fixed_token_access

W, H, FRAMES = 640, 480, 60


def _moving_disc_sequence() -> Sequence:
    """Red 'tissue' panning 3 px a frame, a textured green disc crossing it 7 px a frame; masks are the disc."""
    rng = np.random.default_rng(5)
    tissue = np.zeros((H + 200, W + 400, 3), np.uint8)
    noise = cv2.resize(rng.integers(0, 255, ((H + 200) // 8, (W + 400) // 8), dtype=np.uint8), (W + 400, H + 200))
    tissue[..., 2] = 150 + noise // 4
    tissue[..., 1] = 50 + noise // 6
    tissue[..., 0] = 50 + noise // 8
    dots = cv2.resize(rng.integers(0, 255, (16, 16), dtype=np.uint8), (120, 120), interpolation=cv2.INTER_NEAREST)
    frames, masks = [], []
    for i in range(FRAMES):
        frame = np.ascontiguousarray(tissue[100 : 100 + H, 3 * i : 3 * i + W])
        cx, cy = 120 + 7 * i, 240 + int(40 * np.sin(i / 8))
        mask = np.zeros((H, W), np.uint8)
        cv2.circle(mask, (cx, cy), 60, 1, cv2.FILLED)
        disc = np.zeros_like(frame)
        x0, y0 = cx - 60, cy - 60
        disc[max(0, y0) : y0 + 120, max(0, x0) : x0 + 120, 1] = (
            160 + dots[max(0, -y0) :, max(0, -x0) :][: H - max(0, y0), : W - max(0, x0)] // 4
        )
        disc[..., 2] = 70
        disc[..., 0] = 40
        frame = np.where(mask[..., None].astype(bool), disc, frame)
        frames.append(frame)
        masks.append(mask.astype(bool))
    return Sequence([f"{i:03d}.png" for i in range(FRAMES)], frames, masks)


class DiscModel:
    """Finds the green disc by colour, after `delay_s` (a real model's latency)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._info = ModelInfo(name="disc", version="test", labels=("disc",))

    @property
    def info(self) -> ModelInfo:
        return self._info

    def predict(self, frame_rgb: np.ndarray) -> FrameFindings:
        time.sleep(self.delay_s)
        r, g = frame_rgb[..., 0].astype(np.int16), frame_rgb[..., 1].astype(np.int16)
        mask = ((g > r + 40) & (g > 120)).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        objects = []
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:1]:
            if cv2.contourArea(contour) < 200:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            outline = tuple((int(px), int(py)) for px, py in contour.reshape(-1, 2))
            objects.append(
                Finding(
                    "disc", 0.9, (x, y, x + w, y + h), (outline,), track_id=1, area_px=int(cv2.contourArea(contour))
                )
            )
        height, width = frame_rgb.shape[:2]
        return FrameFindings(self._info, (width, height), tuple(objects))


def _lagged_iou(result, sequence: Sequence) -> float:
    """What the old overlay did: the previous frame's outline on this frame (for comparison only)."""
    own = {o["index"]: o for o in result.per_frame}
    values = [iou(sequence.masks[(i - 1) % FRAMES], sequence.masks[i % FRAMES]) for i in own]
    return float(np.mean(values))


@pytest.mark.parametrize(
    ("delay_s", "fps", "ratio"), [(0.005, 25, 0.95), (0.07, 25, 0.9)], ids=["fast model", "slow model"]
)
@pytest.mark.timeout(180)
async def test_what_is_drawn_sits_on_the_frame_shown(delay_s, fps, ratio):
    sequence = _moving_disc_sequence()
    registry = registry_with(disc=DiscModel(delay_s))
    relay = await measure(sequence, fps, "none", loops=1)
    full = await measure(sequence, fps, "disc", registry=registry, loops=1)
    result = summarise(sequence, fps, "native", "disc", full, relay)
    print(
        f"\n{delay_s * 1000:.0f} ms model at {fps} fps: own {result.own_frame_iou:.3f}, displayed {result.displayed_iou:.3f} "
        f"({result.displayed_over_own:.3f}), previous-frame outline {_lagged_iou(result, sequence):.3f}, "
        f"added latency p50 {result.added_latency_ms_p50} ms, {result.fps_out} fps out, frames {result.registrations}"
    )
    assert result.own_frame_iou > 0.85  # the model itself is right
    assert result.displayed_iou >= ratio * result.own_frame_iou
    assert result.fps_out > 0.8 * fps  # the video's rate never drops for it


async def test_a_source_runs_no_model_for_nobody_and_resumes_for_the_first_viewer():
    model = BoxModel()
    app = create_app(
        Settings(sources=[f"sample={SAMPLE_CLIP}"], model="box"),
        registry_with(box=model),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )
    async with running_server(app) as addr:
        await asyncio.sleep(1.5)
        assert model.calls == 0
        pipeline = app.state.hub.get("sample").pipeline
        assert pipeline.status.reason == "paused: nobody is watching"
        assert pipeline.frames.seq <= 1  # the file is not even decoded
        started = time.monotonic()
        viewer = await client.watch(f"ws://{addr}/ws", "sample", token=CLINICIAN_TOKEN)
        first = await viewer.next_event("findings", timeout=10)
        assert first["objects"] and time.monotonic() - started < 5
        await asyncio.sleep(0.5)
        assert pipeline.frames.seq > 5  # decoding resumed for the viewer
        await viewer.close()
        await asyncio.sleep(0.5)
        after_leaving, frames_after_leaving = model.calls, pipeline.frames.seq
        await asyncio.sleep(1.0)
        assert model.calls <= after_leaving + 1  # at most the call in flight when the last viewer left
        assert pipeline.frames.seq <= frames_after_leaving + 1  # and decoding stopped again


async def test_a_source_kept_running_runs_its_model_unwatched():
    model = BoxModel()
    app = create_app(
        Settings(sources=[f"sample={SAMPLE_CLIP}"], model="box", keep_sources_running=True),
        registry_with(box=model),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )
    async with running_server(app):
        await asyncio.sleep(1.5)
        assert model.calls > 5


def test_bench_overlay_refuses_bad_input_with_a_clear_message(tmp_path, capsys):
    from scopecast.cli import main

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    frame = np.full((64, 64, 3), 100, np.uint8)
    cv2.imwrite(str(images / "001.png"), frame)
    cv2.imwrite(str(images / "002.png"), frame)
    cv2.imwrite(str(masks / "001.png"), np.zeros((64, 64), np.uint8))
    assert main(["bench", "overlay", "--images", str(images), "--masks", str(masks)]) == 2
    assert "1 image(s) have no mask of the same base name" in capsys.readouterr().err
    cv2.imwrite(str(masks / "002.png"), np.zeros((64, 64), np.uint8))
    (images / "003.png").write_bytes(b"not a png")
    (masks / "003.png").write_bytes(b"not a png")
    assert main(["bench", "overlay", "--images", str(images), "--masks", str(masks)]) == 2
    error = capsys.readouterr().err
    assert "cannot read image" in error and "003.png" in error
    assert main(["bench", "overlay", "--images", str(images), "--masks", str(masks), "--fps", "500"]) == 2
    assert "--fps 500 is out of range (1-60)" in capsys.readouterr().err
    assert main(["bench", "overlay", "--images", str(tmp_path / "nope"), "--masks", str(masks)]) == 2
    assert "not a folder" in capsys.readouterr().err
