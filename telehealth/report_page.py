"""What page one of a report shows, gathered in one typed record: who the patient is, the visit, the wound's size
now and at the previous measured visit, the tissue mix, the risk signals with their reasons, and the evidence image.
Built from the store (blocking: call from a worker thread); laid out by pdf_export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from telehealth.case_trend import visit_days
from telehealth.evidence_files import EvidenceFiles
from telehealth.records import Actor, PatientIdentity, WoundType
from telehealth.store.analyses import analysis_by_id, case_analyses
from telehealth.store.cases import CaseStore
from telehealth.store.patients import patient_for_case
from telehealth.store.reports import ReportView
from telehealth.wound.models import InfectionRisk, TissueComposition, WoundAssessment


@dataclass(frozen=True)
class VisitSize:
    day: date
    area_cm2: float | None
    length_cm: float | None
    width_cm: float | None
    reason: str | None  # why there is no size, when there is none

    @classmethod
    def of(cls, day: date, assessment: WoundAssessment) -> VisitSize:
        m = assessment.measurement
        return cls(day, m.area_cm2, m.length_cm, m.width_cm, m.reason)


@dataclass(frozen=True)
class ReportPage:
    patient: PatientIdentity
    site: str | None
    wound_type: WoundType | None
    visit: VisitSize | None  # the analysed photo the report is about
    previous: VisitSize | None  # the last measured visit before it
    tissue: TissueComposition | None
    tissue_not_assessed: str | None
    risk: InfectionRisk | None
    evidence_png: bytes | None

    def change_pct(self, field: str) -> float | None:
        """This visit against the previous one, in percent; None when either was not measured."""
        if self.visit is None or self.previous is None:
            return None
        now, before = getattr(self.visit, field), getattr(self.previous, field)
        if now is None or before is None or before <= 0:
            return None
        return 100.0 * (now - before) / before


def report_page(store: CaseStore, actor: Actor, evidence: EvidenceFiles, view: ReportView) -> ReportPage:
    patient = patient_for_case(store, actor, view.case_id)
    case = store.require_case(actor, view.case_id)
    source = view.current.body.get("source") or {}
    analysis = analysis_by_id(store, source.get("analysis_id") if isinstance(source, dict) else None)
    assessment = None if analysis is None else analysis.assessment
    png = None if analysis is None or analysis.evidence_path is None else evidence.read(analysis.evidence_path)
    visit = previous = None
    if analysis is not None and assessment is not None:
        items = case_analyses(store, actor, view.case_id, audit_as="report_source")
        analysed = [(p, a.assessment) for p, a in items if a is not None and a.assessment is not None]
        days = visit_days(analysed)
        this_day = next((p.taken_at.date() for p, _a in analysed if p.id == analysis.photo_id), None)
        if this_day is not None:
            visit = VisitSize.of(this_day, assessment)
            earlier = [
                VisitSize.of(day, chosen[1])
                for day, _photos, chosen in days
                if day < this_day and chosen[1].measurement.area_cm2 is not None
            ]
            previous = earlier[-1] if earlier else None
    return ReportPage(
        patient=patient.identity,
        site=case.label,
        wound_type=case.wound_type,
        visit=visit,
        previous=previous,
        tissue=None if assessment is None else assessment.tissue,
        tissue_not_assessed=None if assessment is None else assessment.tissue_not_assessed,
        risk=None if assessment is None else assessment.risk,
        evidence_png=png,
    )
