"""Result types of wound analysis (pydantic, JSON-serialisable).

Every physical number is optional: when it cannot be measured the field is
``None`` and a ``reason`` says why, so a consumer can never mistake a missing
measurement for a zero.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# 2: the wound's box and the segmenter's score are part of the analysis (1 kept the box beside it, without a score).
SCHEMA_VERSION = "2"

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


class WoundAssessment(_Result):
    """Everything one photo's analysis found, without the evidence image: what is stored, reported and exported."""

    schema_version: str = SCHEMA_VERSION
    analysed_at: datetime
    model: ModelRef
    image_size: tuple[int, int]  # (width, height)
    wound_found: bool
    wound_pixels: int
    # (x0, y0, x1, y1) photo pixels around the measured wound, end-exclusive; None when no wound was found.
    wound_box: tuple[int, int, int, int] | None = None
    # The segmenter's own confidence in the wound region (a model score, not a clinical probability).
    wound_score: float | None = None
    scale: Scale
    measurement: Measurement
    tissue: TissueComposition | None
    # Why there is no tissue mix although a wound was found (colour not calibrated); None when it was assessed.
    tissue_not_assessed: str | None = None
    redness: PeriwoundRedness | None
    risk: InfectionRisk
    warnings: list[str] = Field(default_factory=list)


class WoundAnalysis(WoundAssessment):
    """The assessment with its evidence image (PNG), as the analysis pipeline returns it."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    evidence: Evidence

    def assessment(self) -> WoundAssessment:
        return WoundAssessment.model_validate(self.model_dump(exclude={"evidence"}))


AnalysisStatus = Literal["analysed", "not_analysed", "failed"]
STORED_ANALYSIS_VERSION: Literal[2] = 2


class StoredAnalysis(_Result):
    """One analysis as the database keeps it (JSON in the analyses table), versioned so old rows stay readable.

    ``assessment`` is present exactly when ``status`` is "analysed"; otherwise ``reason`` says why not.
    """

    version: Literal[2] = STORED_ANALYSIS_VERSION
    status: AnalysisStatus
    reason: str | None = None
    assessment: WoundAssessment | None = None

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        """Version 1 rows: {"status", "reason"?, "analysis"? (with an evidence summary), "wound_box"?}."""
        if not isinstance(data, dict) or "version" in data or "assessment" in data:
            return data
        upgraded: dict[str, Any] = {"status": data.get("status", "failed"), "reason": data.get("reason")}
        analysis = data.get("analysis")
        if isinstance(analysis, dict):
            kept = {k: v for k, v in analysis.items() if k != "evidence"}
            box = data.get("wound_box")
            kept["wound_box"] = tuple(box) if box else None
            upgraded["assessment"] = kept
        return upgraded

    @model_validator(mode="after")
    def _assessment_matches_status(self) -> StoredAnalysis:
        if (self.assessment is not None) != (self.status == "analysed"):
            raise ValueError(
                f"a stored analysis with status {self.status!r} must "
                f"{'' if self.status == 'analysed' else 'not '}carry an assessment"
            )
        return self
