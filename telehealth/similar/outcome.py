"""How a matched case healed, from its trend: weekly % area change and weeks to a 50% smaller area."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from telehealth.case_trend import trend_json
from telehealth.records import PhotoRecord
from telehealth.store.analyses import AnalysisRecord

NOT_YET_HEALED = "not yet healed"  # no measured visit at half the first measured area (yet)


class CaseOutcome(BaseModel):
    weekly_area_change_pct: float | None  # overall, first to last measured visit; negative is shrinking
    area_change_pct: float | None
    weeks_to_50pct_reduction: float | None
    measured_visits: int
    summary: str  # e.g. "50% smaller after 3.0 weeks", "not yet healed", "too few measured visits for a trend"


def weeks_to_half(measured: list[tuple[date, float]]) -> float | None:
    """Weeks from the first measured visit to the first one at half its area or less; None if none is."""
    if not measured:
        return None
    first_day, first_area = measured[0]
    for day, area in measured[1:]:
        if area <= first_area / 2:
            return round((day - first_day).days / 7, 1)
    return None


def case_outcome(items: list[tuple[PhotoRecord, AnalysisRecord | None]]) -> CaseOutcome:
    trend = trend_json(items)
    measured = [(date.fromisoformat(v["date"]), v["area_cm2"]) for v in trend["visits"] if v["area_cm2"] is not None]
    weeks = weeks_to_half(measured)
    if weeks is not None:
        summary = f"50% smaller after {weeks:.1f} weeks"
    elif len(measured) < 2:
        summary = "too few measured visits for a trend"
    else:
        summary = NOT_YET_HEALED
    return CaseOutcome(
        weekly_area_change_pct=trend["overall_weekly_change_pct"],
        area_change_pct=trend["area_change_pct"],
        weeks_to_50pct_reduction=weeks,
        measured_visits=len(measured),
        summary=summary,
    )
