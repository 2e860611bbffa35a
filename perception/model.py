"""The interface every frame model offers to the rest of scopecast."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from perception.findings import FrameFindings, ModelInfo


class ModelError(RuntimeError):
    """A model could not be loaded or could not process a frame; the message says why."""


@runtime_checkable
class FrameModel(Protocol):
    """Turns one RGB frame (H x W x 3, uint8) into findings.

    `predict` is blocking and may be slow: callers run it in a worker thread,
    never on an event loop. Implementations must be safe to call from one
    worker thread at a time (not necessarily concurrently).
    """

    @property
    def info(self) -> ModelInfo: ...

    def predict(self, frame_rgb: np.ndarray) -> FrameFindings: ...


def check_frame(frame_rgb: np.ndarray) -> None:
    """Reject frames a model cannot take, with a message that names the problem."""
    if not isinstance(frame_rgb, np.ndarray):
        raise ModelError(f"frame must be a numpy array, got {type(frame_rgb).__name__}")
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
        raise ModelError(f"frame must be H x W x 3 (RGB), got shape {tuple(frame_rgb.shape)}")
    if frame_rgb.dtype != np.uint8:
        raise ModelError(f"frame must be uint8, got {frame_rgb.dtype}")
    if frame_rgb.shape[0] < 8 or frame_rgb.shape[1] < 8:
        raise ModelError(f"frame is too small: {frame_rgb.shape[1]}x{frame_rgb.shape[0]} (minimum 8x8)")
