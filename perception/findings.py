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
class ContentCheck:
    """Whether a frame looks like the content the model was trained on (the model's content gate).

    `in_domain` is None when the model has no gate (an older model, or a
    runtime that returns only the mask): then nobody knows, and `reason` says why.
    When it is False the model withholds its findings for that frame.
    """

    content: str  # what the model knows, in words a clinician reads: "colonoscopy", "a wound photo"
    in_domain: bool | None
    distance: float | None = None  # the gate's score: larger is further from the training images
    threshold: float | None = None
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.in_domain is not None


@dataclass(frozen=True)
class FrameFindings:
    """The result of running one model on one frame.

    `content` is None for models that make no statement about their input (the
    test models); a segmentation ONNX always fills it (see ContentCheck).
    """

    model: ModelInfo
    frame_size: tuple[int, int]  # (width, height) of the frame the model saw
    objects: tuple[Finding, ...] = field(default_factory=tuple)
    inference_ms: float = 0.0
    content: ContentCheck | None = None

    @property
    def withheld(self) -> bool:
        """True when the content gate judged the frame foreign and the findings were not given."""
        return self.content is not None and self.content.in_domain is False
