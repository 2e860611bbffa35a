"""The GP's patients list: each patient with their cases, the latest photo, its area, and which way the wound is
going (the last two measured visits of that photo's case). Blocking (database): call from a worker thread."""

from __future__ import annotations

from telehealth.case_trend import case_healing_trend
from telehealth.records import Actor, CaseRecord, PatientRecord, PhotoRecord
from telehealth.schemas import CaseOut, PatientOut, PatientSummaryOut, TrendArrow
from telehealth.store.analyses import AnalysisRecord, case_analyses
from telehealth.store.cases import CaseStore
from telehealth.store.patients import visible_patients

# An area within this fraction of the previous visit's reads as stable: tracing and measurement noise on photos
# of one wound is of this order, and an arrow must not flip on it.
STABLE_FRACTION = 0.10

CaseItems = list[tuple[PhotoRecord, AnalysisRecord | None]]


def trend_arrow(items: CaseItems) -> tuple[TrendArrow | None, str | None]:
    """(arrow, None) from the case's last trend interval (its last two measured visits), or (None, why there is
    none) when the case has fewer than two measured visits."""
    trend = case_healing_trend(items)
    if not trend.intervals:
        n = trend.measured_visits
        return None, f"{n} measured visit{'' if n == 1 else 's'}: no trend yet"
    last = trend.intervals[-1]
    change = (last.area_end_cm2 - last.area_start_cm2) / last.area_start_cm2 if last.area_start_cm2 > 0 else 0.0
    direction = "stable" if abs(change) < STABLE_FRACTION else "smaller" if change < 0 else "larger"
    return TrendArrow(direction=direction, change_pct=round(100 * change, 1), since=last.start), None


def _summary(patient: PatientRecord, cases: list[CaseRecord], items_by_case: dict[int, CaseItems]) -> PatientSummaryOut:
    photos = [(photo, analysis) for items in items_by_case.values() for photo, analysis in items]
    latest = max(photos, key=lambda pa: (pa[0].taken_at, pa[0].id), default=None)
    arrow: TrendArrow | None = None
    note: str | None = "no photos yet"
    area: float | None = None
    area_reason: str | None = None
    if latest is not None:
        photo, analysis = latest
        arrow, note = trend_arrow(items_by_case[photo.case_id])
        assessment = None if analysis is None else analysis.assessment
        if assessment is None:
            area_reason = "not analysed yet" if analysis is None else analysis.stored.reason
        else:
            area, area_reason = assessment.measurement.area_cm2, assessment.measurement.reason
    return PatientSummaryOut(
        **PatientOut.of(patient).model_dump(),
        cases=[CaseOut.of(c) for c in cases],
        latest_photo_id=None if latest is None else latest[0].id,
        latest_photo_taken_at=None if latest is None else latest[0].taken_at,
        latest_thumbnail_url=None if latest is None else f"/api/photos/{latest[0].id}/thumbnail",
        latest_area_cm2=area,
        latest_area_reason=area_reason,
        trend=arrow,
        trend_note=note,
    )


def patients_list(store: CaseStore, actor: Actor) -> list[PatientSummaryOut]:
    patients = visible_patients(store, actor)
    cases_by_patient: dict[int, list[CaseRecord]] = {}
    for case in store.list_cases(actor):
        cases_by_patient.setdefault(case.patient_id, []).append(case)
    out = []
    for patient in patients:
        cases = cases_by_patient.get(patient.id, [])
        items = {c.id: case_analyses(store, actor, c.id, audit_as="wound_case") for c in cases}
        out.append(_summary(patient, cases, items))
    return out
