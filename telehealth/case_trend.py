"""A case's healing trend from its photos' analyses (JSON and plots). Blocking: call from a worker thread.

A visit is a day: photos are grouped by the date they were taken (the camera's date, the upload time, or a GP's
correction). Of several photos on one day, the last one taken with a measured area stands for the day (a retake is
usually the better photo); a day with no measured photo keeps the last photo's tissue mix and its reason.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from telehealth.records import PhotoRecord
from telehealth.store.analyses import AnalysisRecord
from telehealth.wound import TissueFractions, TrendPlots, Visit, healing_trend, plot_healing_trend
from telehealth.wound.models import WoundAssessment
from telehealth.wound.trend import HealingTrend

Analysed = tuple[PhotoRecord, WoundAssessment]


def _analysed(items: list[tuple[PhotoRecord, AnalysisRecord | None]]) -> list[Analysed]:
    return [(p, a.assessment) for p, a in items if a is not None and a.assessment is not None]


def _visit(day: date, assessment: WoundAssessment) -> Visit:
    tissue, m = assessment.tissue, assessment.measurement
    return Visit(
        when=day,
        area_cm2=m.area_cm2,
        length_cm=m.length_cm,
        width_cm=m.width_cm,
        tissue=None
        if tissue is None
        else TissueFractions(
            granulation=tissue.granulation,
            slough=tissue.slough,
            necrotic=tissue.necrotic,
            unclassified=tissue.unclassified,
        ),
    )


def visit_days(analysed: list[Analysed]) -> list[tuple[date, list[Analysed], Analysed]]:
    """(day, the day's photos in the order taken, the photo that stands for the day), oldest day first."""
    by_day: dict[date, list[Analysed]] = defaultdict(list)
    for photo, assessment in analysed:
        by_day[photo.taken_at.date()].append((photo, assessment))
    days = []
    for day in sorted(by_day):
        photos = sorted(by_day[day], key=lambda pa: (pa[0].taken_at, pa[0].id))
        measured = [pa for pa in photos if pa[1].measurement.area_cm2 is not None]
        days.append((day, photos, (measured or photos)[-1]))
    return days


def case_healing_trend(items: list[tuple[PhotoRecord, AnalysisRecord | None]]) -> HealingTrend:
    """The trend over the case's visit days (the photo standing for each day), as the page, plot and list read it."""
    days = visit_days(_analysed(items))
    return healing_trend([_visit(day, chosen[1]) for day, _photos, chosen in days])


def trend_json(items: list[tuple[PhotoRecord, AnalysisRecord | None]]) -> dict[str, Any]:
    """Visits (one per day), weekly % change between measured visits, the tissue mix per visit, and a plain note
    when there are too few measured visits for a trend."""
    analysed = _analysed(items)
    days = visit_days(analysed)
    trend = healing_trend([_visit(day, chosen[1]) for day, _photos, chosen in days])
    visits = []
    for day, photos, (photo, assessment) in days:
        v = _visit(day, assessment)
        visits.append(
            {
                "date": day.isoformat(),
                "photo_id": photo.id,  # the photo that stands for the day
                "photo_ids": [p.id for p, _a in photos],
                "area_cm2": v.area_cm2,
                "length_cm": v.length_cm,
                "width_cm": v.width_cm,
                "area_reason": assessment.measurement.reason,
                "tissue": None if v.tissue is None else v.tissue.model_dump(),
                "tissue_not_assessed": assessment.tissue_not_assessed,
            }
        )
    return {
        "visits": visits,
        "intervals": [iv.model_dump(mode="json") for iv in trend.intervals],
        "overall_weekly_change_pct": trend.overall_weekly_change_pct,
        "area_change_pct": trend.area_change_pct,
        "measured_visits": trend.measured_visits,
        "unmeasured_visits": trend.unmeasured_visits,
        "too_few_measured": trend.too_few_measured,
        "not_analysed_photos": len(items) - len(analysed),
        "method": trend.method,
    }


def trend_plots(items: list[tuple[PhotoRecord, AnalysisRecord | None]]) -> TrendPlots:
    return plot_healing_trend(case_healing_trend(items))
