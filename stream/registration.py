"""Findings drawn on the frame they belong to.

Each outgoing frame is drawn with its own findings when the model delivers them within a small budget, or with the
newest findings carried onto it by the motion between the two frames (overlay.motion), or with none when the motion
cannot be trusted (a cut, a resolution change): an outline that trails the tissue is worse than no outline.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import cast

import av
import numpy as np
import numpy.typing as npt

from overlay.draw import OverlayState
from overlay.motion import MotionLimits, carry, estimate_motion, thumbnail
from stream.model_results import ModelResult, SourceFrame

_THUMBNAILS_KEPT = 16  # frames between a result and the frame it is drawn on, at most


# How the findings drawn on a frame relate to it: computed from it, moved onto it by motion, not carried (nothing
# drawn), or no findings yet.
OWN, CARRIED, LOST, NONE = "own", "carried", "lost", "none"
REGISTRATION_KINDS = (OWN, CARRIED, LOST, NONE)


class FrameRegistrar:
    """One per stream: thumbnails of recent frames, and the carry-over of findings between them. Thread-safe: the
    output track draws in a worker pool."""

    def __init__(self, limits: MotionLimits = MotionLimits()) -> None:
        self._limits = limits
        self._thumbnails: collections.OrderedDict[int, npt.NDArray[np.uint8]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def register(
        self, seq: int, source: SourceFrame, result: ModelResult | None, state: OverlayState
    ) -> tuple[OverlayState, str]:
        """`state` with findings that belong to frame `seq`, and how (OWN, CARRIED, LOST, NONE). Runs in a worker
        thread; a frame drawn with its own findings costs nothing here, a carried one about 1 ms at 720p."""
        if result is None or state.findings is None:
            return state, NONE
        if result.seq == seq:
            return state, OWN
        # Thumbnails are made only when a carry needs them (the result's frame is still held by the result).
        origin = self._thumbnail(result.seq, result.source.frame)
        shown = self._thumbnail(seq, source.frame)
        motion = estimate_motion(origin, shown, source.frame.width)
        carried = carry(state.findings, motion, self._limits)
        if carried is None:
            return dataclasses.replace(state, findings=None), LOST
        return dataclasses.replace(state, findings=carried), CARRIED

    def _thumbnail(self, seq: int, frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
        with self._lock:
            cached = self._thumbnails.get(seq)
        if cached is not None:
            return cached
        made = thumbnail(luma(frame))
        with self._lock:
            self._thumbnails[seq] = made
            while len(self._thumbnails) > _THUMBNAILS_KEPT:
                self._thumbnails.popitem(last=False)
        return made

    def clear(self) -> None:
        with self._lock:
            self._thumbnails.clear()


def luma(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """The frame's brightness as H x W uint8: the Y plane itself for YUV frames (no conversion), else converted."""
    if frame.format.name in ("yuv420p", "yuvj420p", "nv12"):
        plane = frame.planes[0]
        data = np.frombuffer(plane, np.uint8)  # type: ignore[call-overload]  # PyAV's stubs omit VideoPlane's buffer protocol
        rows: npt.NDArray[np.uint8] = data.reshape(plane.height, plane.line_size)
        return rows[:, : plane.width]
    return cast("npt.NDArray[np.uint8]", frame.to_ndarray(format="gray"))  # gray is 8-bit; PyAV types every format
