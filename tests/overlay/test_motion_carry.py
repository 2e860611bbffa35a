"""Carrying findings by motion: an outline follows the tissue it was drawn on, and is refused after a scene cut or a
change of resolution (better no outline than one off the tissue)."""

from __future__ import annotations

import cv2
import numpy as np

from overlay.motion import carry, estimate_motion, thumbnail
from perception.findings import Finding, FrameFindings, ModelInfo

W, H = 1280, 720


def _texture(seed: int, size: tuple[int, int] = (W + 200, H + 200)) -> np.ndarray:
    """Smooth random tissue-like texture (grey)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (size[1] // 8, size[0] // 8), dtype=np.uint8)
    return cv2.resize(cv2.GaussianBlur(noise, (0, 0), 1.5), size, interpolation=cv2.INTER_CUBIC)


def _findings(box: tuple[int, int, int, int]) -> FrameFindings:
    x0, y0, x1, y1 = box
    outline = (((x0, y0), (x1, y0), (x1, y1), (x0, y1)),)
    return FrameFindings(ModelInfo("test", "1"), (W, H), (Finding("polyp", 0.9, box, outline, track_id=1),))


def test_an_outline_follows_the_motion_of_the_frame():
    scene = _texture(1)
    before = scene[100 : 100 + H, 100 : 100 + W]
    after = scene[100 - 24 : 100 - 24 + H, 100 - 40 : 100 - 40 + W]  # the content moved 40 px right, 24 px down
    motion = estimate_motion(thumbnail(before), thumbnail(after), W)
    moved = carry(_findings((500, 300, 640, 420)), motion)
    assert moved is not None
    x0, y0, x1, y1 = moved.objects[0].box
    assert abs(x0 - 540) <= 8 and abs(y0 - 324) <= 8 and abs(x1 - 680) <= 8 and abs(y1 - 444) <= 8, moved.objects[0].box
    assert moved.objects[0].track_id == 1 and moved.objects[0].label == "polyp"


def test_a_scene_cut_is_not_carried():
    motion = estimate_motion(thumbnail(_texture(1)[:H, :W]), thumbnail(_texture(2)[:H, :W]), W)
    assert carry(_findings((500, 300, 640, 420)), motion) is None


def test_a_change_of_resolution_is_not_carried():
    small = cv2.resize(_texture(1)[:H, :W], (640, 480))
    assert estimate_motion(thumbnail(_texture(1)[:H, :W]), thumbnail(small), W) is None
    assert carry(_findings((500, 300, 640, 420)), None) is None


def test_a_still_frame_keeps_its_outline_where_it_was():
    frame = _texture(3)[:H, :W]
    motion = estimate_motion(thumbnail(frame), thumbnail(frame.copy()), W)
    moved = carry(_findings((500, 300, 640, 420)), motion)
    assert moved is not None and all(abs(a - b) <= 2 for a, b in zip(moved.objects[0].box, (500, 300, 640, 420)))
