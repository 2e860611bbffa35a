"""Fake camera files for headless Chromium (`--use-file-for-fake-video-capture`): Y4M, I420, looped by Chromium."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from stream.testing.framestamp import moving_pattern


def write_y4m(
    path: Path,
    width: int = 640,
    height: int = 480,
    frames: int = 30,
    pattern: Callable[[int], np.ndarray] | None = None,
) -> Path:
    """Frames `pattern(i)` (BGR, height x width; a moving test pattern by default) as a Y4M file."""
    pattern = pattern or moving_pattern(width, height)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(np.ascontiguousarray(pattern(i)), cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def still_y4m(path: Path, image_bgr: np.ndarray, frames: int = 10) -> Path:
    """A camera that shows one picture (cropped to even sides, as I420 needs)."""
    height, width = (image_bgr.shape[0] // 2) * 2, (image_bgr.shape[1] // 2) * 2
    image = image_bgr[:height, :width]
    return write_y4m(path, width, height, frames, lambda _i: image)
