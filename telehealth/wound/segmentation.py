"""Where the wound mask comes from: any callable, or the perception ONNX wound model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from perception.findings import FrameFindings, ModelInfo
from telehealth.wound.models import ModelRef


@dataclass(frozen=True)
class WoundMask:
    """A segmenter's answer for one photo."""

    mask: npt.NDArray[np.bool_]  # H x W, True on the wound
    model: ModelRef
    # The model's confidence in the wound region; a given outline (clinician's, ground truth) is certain: 1.0.
    score: float


# segment(rgb H x W x 3 uint8) -> WoundMask
Segmenter = Callable[[npt.NDArray[np.uint8]], WoundMask]


def default_wound_model_path() -> Path:
    """The shipped model photos are measured with (it may not exist yet): ``wound-accurate`` when shipped, else the
    fast ``wound`` default that live streams run. A photo is analysed once, in the background, so the accurate model's
    extra network time costs no one a frame, and its mask is what the measurements come from."""
    import perception

    weights = Path(perception.__file__).resolve().parent / "weights"
    accurate = weights / "wound-accurate.onnx"
    return accurate if accurate.is_file() else weights / "wound.onnx"


class ContentNotRecognised(Exception):
    """The wound model's content gate judged the photo not to be a wound photo: nothing is measured."""


class MaskModel(Protocol):
    """What a wound model offers (perception's segmentation model does): findings with the mask, and a reset."""

    @property
    def info(self) -> ModelInfo: ...

    def predict_with_mask(self, frame_rgb: npt.NDArray[np.uint8]) -> tuple[FrameFindings, npt.NDArray[Any]]: ...

    def reset(self) -> None: ...


class OnnxWoundSegmenter:
    """Adapts a perception segmentation model to ``Segmenter``.

    Photos of different patients are unrelated frames, so the model's frame-to-frame tracker is reset after each
    photo. A photo the model's content gate does not recognise raises ``ContentNotRecognised``.
    Not safe for concurrent calls: give each worker thread its own instance.
    """

    def __init__(self, model: MaskModel) -> None:
        self._model = model

    @classmethod
    def from_path(cls, path: str | Path | None = None, **kwargs: Any) -> OnnxWoundSegmenter:
        # Imported here: onnxruntime is only needed when a real model is used.
        from perception.segmentation_model import SegmentationModel

        return cls(SegmentationModel(path if path is not None else default_wound_model_path(), **kwargs))

    @property
    def model(self) -> MaskModel:
        return self._model

    def __call__(self, rgb: npt.NDArray[np.uint8]) -> WoundMask:
        found, mask = self._model.predict_with_mask(rgb)
        self._model.reset()
        if found.withheld and found.content is not None:
            raise ContentNotRecognised(
                f"not analysed: the photo does not look like {found.content.content}, so the wound model "
                "made no measurement"
            )
        info = self._model.info
        # The wound's score: the most confident region the model found (0 when it found none).
        score = max((f.score for f in found.objects), default=0.0)
        return WoundMask(
            np.asarray(mask).astype(bool), ModelRef(name=str(info.name), version=str(info.version)), float(score)
        )


def fixed_mask_segmenter(mask: npt.NDArray[Any], name: str = "given-mask", version: str = "0") -> Segmenter:
    """A segmenter that returns a known mask (ground truth, clinician outline, tests)."""
    given = WoundMask(np.asarray(mask), ModelRef(name=name, version=version), score=1.0)

    def segment(_rgb: npt.NDArray[np.uint8]) -> WoundMask:
        return given

    return segment
