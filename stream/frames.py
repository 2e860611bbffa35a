"""Frame-to-array conversion that is safe when several threads read the same frame.

PyAV caches one scaler (SwsContext) on each frame, so two threads converting the
same frame at once (the model worker and the overlay worker) share it and can
hang. Each thread here keeps its own reformatter instead; the frame is only read.
"""

from __future__ import annotations

import threading
from typing import cast

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

_local = threading.local()


def _reformatter() -> VideoReformatter:
    reformatter: VideoReformatter | None = getattr(_local, "reformatter", None)
    if reformatter is None:
        reformatter = _local.reformatter = VideoReformatter()
    return reformatter


def frame_to_array(frame: av.VideoFrame, fmt: str = "bgr24") -> npt.NDArray[np.uint8]:
    """The frame as an H x W x 3 array in `fmt`, one of the 8-bit packed formats (bgr24, rgb24)."""
    # PyAV types to_ndarray for every pixel format; the 8-bit ones callers ask for give uint8.
    return cast("npt.NDArray[np.uint8]", _reformatter().reformat(frame, format=fmt).to_ndarray())


def array_to_frame(image: npt.NDArray[np.uint8]) -> av.VideoFrame:
    """A yuv420p frame from a BGR image, converted here once.

    aiortc's relay hands the same frame to every viewer's encoder, and an
    encoder given another pixel format converts it with the frame's own shared
    scaler, from several threads at once. Sending yuv420p avoids that path, and
    the conversion is paid once instead of once per viewer. OpenCV's converter
    is about three times faster than swscale's here.
    """
    height, width = image.shape[:2]
    if height % 2 or width % 2:  # I420 needs even sizes; let swscale handle odd ones
        return _reformatter().reformat(av.VideoFrame.from_ndarray(image, format="bgr24"), format="yuv420p")
    # OpenCV keeps the input's 8-bit depth; its stubs type every result as any numeric array.
    i420 = cast("npt.NDArray[np.uint8]", cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420))
    return av.VideoFrame.from_ndarray(i420, format="yuv420p")


def ensure_yuv420p(frame: av.VideoFrame) -> av.VideoFrame:
    """Pass-through frames must be yuv420p too, for the same reason as `array_to_frame`."""
    if frame.format.name == "yuv420p":
        return frame
    return _reformatter().reformat(frame, format="yuv420p")
