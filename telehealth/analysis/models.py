"""Result types of wound analysis (pydantic, JSON-serialisable).

Every physical number is optional: when it cannot be measured the field is
``None`` and a ``reason`` says why, so a consumer can never mistake a missing
measurement for a zero.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"

NOT_MEASURED_NO_MARKER = "not measured: no scale marker in the photo"
NOT_MEASURED_STEEP = "not measured: marker seen at too steep an angle"
NOT_MEASURED_SMALL = "not measured: scale marker too small in the photo"
NOT_MEASURED_NO_WOUND = "not measured: no wound found in the photo"

CLINICAL_REVIEW_NOTE = "A prompt for clinical review, not a diagnosis."

Status = Literal["measured", "not_measured"]


class _Result(BaseModel):
    # Frozen: a stored analysis is a record, it must not be edited in place.
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelRef(_Result):
    """Which segmentation model produced the wound mask."""

    name: str
    version: str


class MarkerObservation(_Result):
    """The ArUco marker used for scale, in photo pixel coordinates."""

    marker_id: int
    dictionary: str
    marker_mm: float
    corners_px: list[tuple[float, float]]  # clockwise from the marker's top-left corner
    sides_px: list[float]  # the four side lengths
    mean_side_px: float
    side_ratio: float  # longest / shortest side; 1.0 for a marker seen head-on


class Scale(_Result):
    status: Status
    reason: str | None = None
    mm_per_px: float | None = None
    marker: MarkerObservation | None = None
    markers_found: int = 0


class Measurement(_Result):
    """Wound size in physical units; all ``None`` unless ``status == 'measured'``."""

    status: Status
    reason: str | None = None
    area_cm2: float | None = None
    length_cm: float | None = None  # maximum Feret diameter
    width_cm: float | None = None  # extent perpendicular to the length
    perimeter_cm: float | None = None
    min_rect_length_cm: float | None = None  # sides of the minimum-area bounding rectangle
    min_rect_width_cm: float | None = None
    regions: int = 0  # separate wound regions measured together


class TissueComposition(_Result):
    """Fractions of wound-bed pixels per tissue class; they sum to 1."""

    granulation: float
    slough: float
    necrotic: float
    unclassified: float
    pixels: int
    method: str
    limits: list[str]


class PeriwoundRedness(_Result):
    status: Status
    reason: str | None = None
    index: float | None = None  # mean a* in the ring minus mean a* of the reference skin
    ring_mean_a: float | None = None
    reference_mean_a: float | None = None
    ring: tuple[float, float] | None = None  # inner/outer distance from the wound edge
    reference: tuple[float, float] | None = None
    unit: Literal["mm", "px"] | None = None
    threshold: float
    above_threshold: bool = False
    method: str
    limits: list[str]


class RiskSignal(_Result):
    code: str
    description: str
    value: float | None = None
    threshold: float | None = None


class InfectionRisk(_Result):
    flagged: bool
    signals: list[RiskSignal] = Field(default_factory=list)
    not_evaluated: list[str] = Field(default_factory=list)
    note: str = CLINICAL_REVIEW_NOTE


class Evidence(_Result):
    # Bytes travel as base64 in JSON (PNG is binary, not UTF-8).
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    overlay_png: bytes
    media_type: str = "image/png"
    width: int
    height: int


class PreviousMeasurement(_Result):
    """The last visit's measurement, for the area-change signal."""

    area_cm2: float | None
    taken_at: datetime | None = None


class WoundAnalysis(_Result):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    schema_version: str = SCHEMA_VERSION
    analysed_at: datetime
    model: ModelRef
    image_size: tuple[int, int]  # (width, height)
    wound_found: bool
    wound_pixels: int
    scale: Scale
    measurement: Measurement
    tissue: TissueComposition | None
    redness: PeriwoundRedness | None
    risk: InfectionRisk
    evidence: Evidence
    warnings: list[str] = Field(default_factory=list)
