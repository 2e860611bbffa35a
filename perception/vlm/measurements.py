"""What was measured outside the frame's detections, as answers and report drafts may quote it.

Telehealth fills it from a wound analysis; a clinician's marked regions ride along. Typed fields only: nothing that
could identify a patient (a name, a record number) has anywhere to go, and no reader has to guess at key names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) pixels, end-exclusive


@dataclass(frozen=True)
class TissueMix:
    """Shares of the wound bed (0..1) per tissue class."""

    granulation: float
    slough: float
    necrotic: float
    unclassified: float = 0.0

    def shares(self) -> dict[str, float]:
        return {
            "granulation": self.granulation,
            "slough": self.slough,
            "necrotic": self.necrotic,
            "unclassified": self.unclassified,
        }


@dataclass(frozen=True)
class Measurements:
    """Calibrated numbers about one finding (`subject`, e.g. "wound"), and regions a clinician marked on the frame.

    A size that could not be measured is None with `size_not_measured` saying why, never a zero.
    """

    subject: str = "wound"
    area_cm2: float | None = None
    length_cm: float | None = None
    width_cm: float | None = None
    size_not_measured: str | None = None
    tissue_mix: TissueMix | None = None
    redness_index: float | None = None  # periwound CIELAB a* difference
    infection_signals: tuple[str, ...] = ()
    infection_flagged: bool | None = None  # None: not assessed
    regions: Mapping[str, Box] = field(default_factory=dict)

    def area_of(self, label: str) -> float | None:
        """The measured area of `label` (or of the subject when no label is named)."""
        return self.area_cm2 if label in ("", self.subject) else None

    def necrotic_or_slough(self) -> dict[str, float]:
        """The tissue shares that can accompany infection risk, when present."""
        if self.tissue_mix is None:
            return {}
        shares = {"slough": self.tissue_mix.slough, "necrotic": self.tissue_mix.necrotic}
        return {name: share for name, share in shares.items() if share > 0}

    def facts(self) -> dict[str, Any]:
        """Name → value, in the order a draft lists them (and a report body stores them)."""
        out: dict[str, Any] = {}
        if self.area_cm2 is not None:
            out[f"{self.subject}_area_cm2"] = self.area_cm2
            if self.length_cm is not None:
                out[f"{self.subject}_length_cm"] = self.length_cm
            if self.width_cm is not None:
                out[f"{self.subject}_width_cm"] = self.width_cm
        elif self.size_not_measured:
            out[f"{self.subject}_area"] = self.size_not_measured
        if self.tissue_mix is not None:
            out["tissue_mix"] = self.tissue_mix.shares()
        if self.redness_index is not None:
            out["periwound_redness_index"] = self.redness_index
        if self.infection_signals:
            out["infection_signals"] = list(self.infection_signals)
        if self.infection_flagged is not None:
            out["infection_risk_flag"] = "flagged for clinical review" if self.infection_flagged else "no signal found"
        return out


NO_MEASUREMENTS = Measurements()
