"""The interface every frame model offers to the rest of scopecast."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class StreamFrame:
    """One stream's frame in a batch that mixes streams: `stream` keys the state (tracks) the model keeps for it."""

    stream: str
    frame_rgb: np.ndarray


@runtime_checkable
class StreamBatchModel(FrameModel, Protocol):
    """A FrameModel that runs frames of several streams as one batch (one network run), keeping each stream's
    state apart, so one instance serves every stream of a model. Same threading rule as `predict`."""

    def predict_streams(self, frames: Sequence[StreamFrame]) -> list[FrameFindings]:
        """Findings for each frame, in order; a frame's `inference_ms` includes its share of the batched run."""
        ...

    def forget_stream(self, stream: str) -> None:
        """Drop the state kept for a stream that has ended."""
        ...


def check_frame(frame_rgb: np.ndarray) -> None:
    """Reject frames a model cannot take, with a message that names the problem."""
    try:
        check_rgb_image(frame_rgb, what="frame", min_side=8)
    except ImageCheckError as e:  # callers of a model catch ModelError, not ValueError
        raise ModelError(str(e)) from None
