"""Where the wound mask comes from: any callable, or the perception ONNX wound model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# segment(rgb) -> (mask bool H x W, model name, model version)
Segmenter = Callable[[np.ndarray], tuple[np.ndarray, str, str]]


def default_wound_model_path() -> Path:
    """Where the shipped wound model lives (it may not exist yet)."""
    import perception

    return Path(perception.__file__).resolve().parent / "weights" / "wound.onnx"


class ContentNotRecognised(Exception):
    """The wound model's content gate judged the photo not to be a wound photo: nothing is measured."""


class _MaskModel(Protocol):
    @property
    def info(self) -> Any: ...  # perception.findings.ModelInfo: .name, .version


class OnnxWoundSegmenter:
    """Adapts a perception segmentation model (e.g. ``OnnxSegmentationModel``) to ``Segmenter``.

    Photos of different patients are unrelated frames, so ``segment`` (which leaves
    the model's frame-to-frame tracker alone) is used when the model has it;
    otherwise ``predict_with_mask`` followed by ``reset`` so no track carries over.
    Not safe for concurrent calls: give each worker thread its own instance.
    """

    def __init__(self, model: _MaskModel) -> None:
        self._model = model

    @classmethod
    def from_path(cls, path: str | Path | None = None, **kwargs: Any) -> OnnxWoundSegmenter:
        # Imported here: onnxruntime is only needed when a real model is used.
        from perception.segmentation_model import SegmentationModel

        return cls(SegmentationModel(path if path is not None else default_wound_model_path(), **kwargs))

    @property
    def model(self) -> _MaskModel:
        return self._model

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, str, str]:
        if getattr(self._model, "has_content_gate", False):
            # The gate's verdict comes with the findings; a photo the model does not know is not measured.
            found, mask = self._model.predict_with_mask(rgb)  # type: ignore[attr-defined]
            self._model.reset()  # type: ignore[attr-defined]
            if found.withheld:
                raise ContentNotRecognised(
                    f"not analysed: the photo does not look like {found.content.content}, so the wound model "
                    "made no measurement")
            info = self._model.info
            return np.asarray(mask).astype(bool), str(info.name), str(info.version)
        segment = getattr(self._model, "segment", None)
        if callable(segment):
            mask = segment(rgb)
        else:
            _, mask = self._model.predict_with_mask(rgb)  # type: ignore[attr-defined]
            reset = getattr(self._model, "reset", None)
            if callable(reset):
                reset()
        info = self._model.info
        return np.asarray(mask).astype(bool), str(info.name), str(info.version)


def fixed_mask_segmenter(mask: np.ndarray, name: str = "given-mask", version: str = "0") -> Segmenter:
    """A segmenter that returns a known mask (ground truth, clinician outline, tests)."""

    def segment(_rgb: np.ndarray) -> tuple[np.ndarray, str, str]:
        return mask, name, version

    return segment
