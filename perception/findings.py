"""What a model found in one frame, in pixel coordinates of that frame."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelInfo:
    """Identity of the model that produced a result; travels with every finding."""

    name: str
    version: str
    task: str = "segmentation"
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One object: a labelled region with its box, outline and (when tracked) track id.

    `box` is (x0, y0, x1, y1) in pixels, exclusive of x1/y1.
    `outline` holds one or more closed polygons, each a tuple of (x, y) points,
    so a mask can be drawn and sent without shipping the full bitmap.
    """

    label: str
    score: float
    box: tuple[int, int, int, int]
    outline: tuple[tuple[tuple[int, int], ...], ...] = ()
    track_id: int | None = None
    area_px: int = 0


@dataclass(frozen=True)
class FrameFindings:
    """The result of running one model on one frame."""

    model: ModelInfo
    frame_size: tuple[int, int]  # (width, height) of the frame the model saw
    objects: tuple[Finding, ...] = field(default_factory=tuple)
    inference_ms: float = 0.0
