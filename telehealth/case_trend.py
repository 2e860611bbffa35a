"""A case's healing trend from its photos' analyses (JSON and plots). Blocking: call from a worker thread."""

from __future__ import annotations

from typing import Any

from telehealth.records import PhotoRecord
from telehealth.store.analyses import AnalysisRecord
from telehealth.wound import TissueFractions, TrendPlots, Visit, healing_trend, plot_healing_trend
from telehealth.wound.models import WoundAssessment

Analysed = tuple[PhotoRecord, WoundAssessment]


def _analysed(items: list[tuple[PhotoRecord, AnalysisRecord | None]]) -> list[Analysed]:
    return [(p, a.assessment) for p, a in items if a is not None and a.assessment is not None]


def _visit(photo: PhotoRecord, assessment: WoundAssessment) -> Visit:
    tissue = assessment.tissue
    return Visit(
        when=photo.received_at.date(),
        area_cm2=assessment.measurement.area_cm2,
        tissue=None
        if tissue is None
        else TissueFractions(
            granulation=tissue.granulation,
            slough=tissue.slough,
            necrotic=tissue.necrotic,
            unclassified=tissue.unclassified,
        ),
    )


def trend_json(items: list[tuple[PhotoRecord, AnalysisRecord | None]]) -> dict[str, Any]:
    """Visits (one per analysed photo), weekly % change between measured visits, and the tissue mix per visit."""
    analysed = _analysed(items)
    trend = healing_trend([_visit(p, a) for p, a in analysed])
    visits = []
    for p, a in sorted(analysed, key=lambda pa: pa[0].received_at):
        v = _visit(p, a)
        visits.append(
            {
                "photo_id": p.id,
                "date": v.when.isoformat(),
                "area_cm2": v.area_cm2,
                "area_reason": a.measurement.reason,
                "tissue": None if v.tissue is None else v.tissue.model_dump(),
            }
        )
    return {
        "visits": visits,
        "intervals": [iv.model_dump(mode="json") for iv in trend.intervals],
        "overall_weekly_change_pct": trend.overall_weekly_change_pct,
        "area_change_pct": trend.area_change_pct,
        "measured_visits": trend.measured_visits,
        "unmeasured_visits": trend.unmeasured_visits,
        "not_analysed_photos": len(items) - len(analysed),
        "method": trend.method,
    }


def trend_plots(items: list[tuple[PhotoRecord, AnalysisRecord | None]]) -> TrendPlots:
    analysed = _analysed(items)
    return plot_healing_trend(healing_trend([_visit(p, a) for p, a in analysed]))
