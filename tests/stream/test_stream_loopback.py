"""End to end over loopback: an aiortc client publishes a stamped camera and checks what comes back."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from scopecast.app import create_app
from scopecast.settings import Settings
from stream.events import FindingsEvent, StatusEvent, parse_server_event
from stream.testing import client
from stream.testing.framestamp import StampedVideoTrack, moving_pattern, read_stamp, stamp_frame
from tests.helpers.fakes import BOX_FRACTION, BoxModel, FailingModel, HangingModel, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.stream_access import CLINICIAN_TOKEN, fixed_token_access

W, H, FPS = 640, 480, 15


def _app(model_name: str, model: object, **settings: object):
    base = dict(serve_sample=False, model=model_name, hang_timeout_s=1.0, stale_after_s=0.8, fade_after_s=0.3)
    base.update(settings)
    return create_app(
        Settings(**base), registry_with(**{model_name: model}), vlm=keyword_vlm(), stream_access=fixed_token_access()
    )


async def _receive(track, seconds: float) -> list[tuple[float, np.ndarray]]:
    frames: list[tuple[float, np.ndarray]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = await asyncio.wait_for(track.recv(), 5)
        frames.append((time.monotonic(), frame.to_ndarray(format="bgr24")))
    return frames


def _events(session: client.ClientSession) -> list[FindingsEvent | StatusEvent]:
    out = []
    while not session.events.empty():
        out.append(parse_server_event(__import__("json").dumps(session.events.get_nowait())))
    return out


def _box_region(image: np.ndarray) -> tuple[slice, slice]:
    h, w = image.shape[:2]
    fx0, fy0, fx1, fy1 = BOX_FRACTION
    # the inner part of the box, away from the outline
    return slice(int(h * fy0) + 12, int(h * fy1) - 12), slice(int(w * fx0) + 12, int(w * fx1) - 12)


def _difference_inside_and_outside(image: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    ys, xs = _box_region(image)
    diff = np.abs(image.astype(np.int16) - reference.astype(np.int16)).mean(axis=2)
    inside = float(diff[ys, xs].mean())
    outside = float(diff[100:140, 40:140].mean())  # top-left area: no findings, no banner in the ok state
    return inside, outside


async def test_annotated_frames_and_findings_come_back():
    pattern = moving_pattern(W, H)
    async with running_server(_app("box", BoxModel())) as addr:
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(W, H, FPS, pattern), token=CLINICIAN_TOKEN)
        try:
            frames = await _receive(session.track, 4.0)
        finally:
            await session.close()
    annotated = 0
    for _, image in frames[10:]:
        index = read_stamp(image)
        if index is None:
            continue
        reference = pattern(index).copy()
        stamp_frame(reference, index)
        inside, outside = _difference_inside_and_outside(image, reference)
        if inside > 3 * outside + 10:
            annotated += 1
    assert len(frames) >= 0.7 * 4.0 * FPS, f"only {len(frames)} frames in 4 s at {FPS} fps"
    assert annotated >= 0.5 * len(frames[10:]), f"finding drawn on only {annotated} of {len(frames) - 10} frames"
    events = _events(session)
    findings = [e for e in events if isinstance(e, FindingsEvent)]
    assert findings, "no findings events on the data channel"
    assert findings[-1].objects[0].label == "thing"
    assert findings[-1].stream_id == session.stream_id
    assert any(isinstance(e, StatusEvent) and e.ai_available for e in events)


async def test_slow_model_never_slows_the_video():
    model = BoxModel(delay_s=1.0)
    async with running_server(_app("slow", model)) as addr:
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(W, H, FPS), token=CLINICIAN_TOKEN)
        try:
            await _receive(session.track, 1.0)  # let the connection settle
            frames = await _receive(session.track, 4.0)
        finally:
            await session.close()
    rate = len(frames) / 4.0
    assert rate >= 0.8 * FPS, f"output fell to {rate:.1f} fps with a 1 s model (source {FPS} fps)"
    gaps = np.diff([t for t, _ in frames])
    assert gaps.max() < 0.5, f"video froze for {gaps.max():.2f} s"
    assert 2 <= model.calls <= 8, "the model must only see the freshest frames, about one a second"
    events = _events(session)
    assert any(isinstance(e, StatusEvent) and not e.ai_available and "too slow" in e.reason for e in events)


async def test_failing_model_reports_status_and_frames_continue():
    async with running_server(_app("failing", FailingModel())) as addr:
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(W, H, FPS), token=CLINICIAN_TOKEN)
        try:
            frames = await _receive(session.track, 3.0)
        finally:
            await session.close()
    assert len(frames) >= 0.7 * 3.0 * FPS
    statuses = [e for e in _events(session) if isinstance(e, StatusEvent)]
    assert any(not s.ai_available and "simulated model crash" in s.reason for s in statuses), statuses
    last = frames[-1][1]
    assert last[2:10, 300:340, 2].mean() > 150, "red 'AI unavailable' banner expected at the top"


async def test_hanging_model_reports_and_recovers():
    model = HangingModel(hang_on_call=3)
    async with running_server(_app("hanging", model)) as addr:
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(W, H, FPS), token=CLINICIAN_TOKEN)
        try:
            frames = await _receive(session.track, 3.5)
            model.release.set()
            frames += await _receive(session.track, 2.0)
        finally:
            model.release.set()
            await session.close()
    assert len(frames) >= 0.7 * 5.5 * FPS, f"{len(frames)} frames in 5.5 s"
    statuses = [e for e in _events(session) if isinstance(e, StatusEvent)]
    reasons = [s.reason for s in statuses if not s.ai_available]
    assert any("not responding" in r for r in reasons), reasons
    hung_at = next(i for i, s in enumerate(statuses) if "not responding" in s.reason)
    assert any(s.ai_available for s in statuses[hung_at + 1 :]), "status must recover after the model returns"


async def test_vanished_client_is_cleaned_up():
    threads_before = threading.active_count()
    app = _app("box", BoxModel())
    async with running_server(app) as addr:
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(W, H, FPS), token=CLINICIAN_TOKEN)
        await _receive(session.track, 1.0)
        hub = app.state.hub
        assert len(hub.streams()) == 1 and hub.session_count == 1
        # Vanish: drop the media path and the socket without a goodbye.
        await session.pc.close()
        session.socket.transport.abort() if hasattr(session.socket, "transport") else await session.socket.close()
        for _ in range(100):
            if not hub.streams() and hub.session_count == 0:
                break
            await asyncio.sleep(0.1)
        assert hub.streams() == [] and hub.session_count == 0
        tasks = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(("model:", "watchdog:", "pump:"))]
        assert tasks == []
    await asyncio.sleep(0.5)
    assert threading.active_count() <= threads_before + 2, "worker threads leaked"


async def test_every_direct_viewer_keeps_getting_video():
    """Three viewers of one stream, each with its own encoder: each keeps receiving new frames. (They used to share
    one frame object that every encoder rebases in place, and all but one viewer stopped after half a second.)"""
    app = _app("box", BoxModel())
    async with running_server(app) as addr:
        publisher = await client.publish(
            f"ws://{addr}/ws", StampedVideoTrack(640, 360, 30), token=CLINICIAN_TOKEN, receive_video=False
        )
        viewers = [await client.watch(f"ws://{addr}/ws", publisher.stream_id, token=CLINICIAN_TOKEN) for _ in range(3)]
        try:
            # Read from the start (aiortc queues without bound), count only the last 2.5 s.
            readings = await asyncio.gather(*(_receive(v.track, 4.0) for v in viewers))
        finally:
            for s in viewers + [publisher]:
                await s.close()
    for frames in readings:
        window = [image for at, image in frames if at >= frames[-1][0] - 2.5]
        stamps = [s for s in map(read_stamp, window) if s is not None]
        assert len(window) >= 0.5 * 2.5 * 30, [len([1 for at, _ in f if at >= f[-1][0] - 2.5]) for f in readings]
        assert len(stamps) >= 0.8 * len(window) and stamps[-1] - stamps[0] >= 0.5 * 2.5 * 30, stamps[:5]


async def test_two_viewers_share_one_inference():
    model = BoxModel()
    app = _app("box", model)
    async with running_server(app) as addr:
        publisher = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(W, H, FPS), token=CLINICIAN_TOKEN)
        viewers = [await client.watch(f"ws://{addr}/ws", publisher.stream_id, token=CLINICIAN_TOKEN) for _ in range(2)]
        try:
            await _receive(publisher.track, 0.5)
            calls_before = model.calls
            results = await asyncio.gather(*(_receive(v.track, 2.0) for v in viewers), _receive(publisher.track, 2.0))
            calls = model.calls - calls_before
        finally:
            for s in viewers + [publisher]:
                await s.close()
    assert all(len(r) >= 0.6 * 2.0 * FPS for r in results), [len(r) for r in results]
    assert calls <= 2.0 * FPS + 3, f"{calls} model calls for 3 viewers in 2 s: inference must run once per frame"
    assert any(isinstance(e, FindingsEvent) for e in _events(viewers[0]))
