"""The interface every frame model offers to the rest of scopecast."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from perception.findings import FrameFindings, ModelInfo
from perception.image_check import ImageCheckError, check_rgb_image


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
    try:
        check_rgb_image(frame_rgb, what="frame", min_side=8)
    except ImageCheckError as e:  # callers of a model catch ModelError, not ValueError
        raise ModelError(str(e)) from None
