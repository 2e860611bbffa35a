"""What a case page watches: a fingerprint of the case (its photos, their analyses, reports, consults) that changes
whenever anything shown on the page does. Reading it is not a view of the patient's data, so it is not audited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from telehealth.records import Actor
from telehealth.store.cases import CaseStore
from telehealth.store.tables import (
    AnalysisRow,
    PhotoSubmissionRow,
    ReportRow,
    ReportVersionRow,
    VideoConsultRow,
)
from telehealth.store.visibility import visible_case


@dataclass(frozen=True)
class CaseFingerprint:
    photos: int
    last_photo_id: int
    last_analysis_id: int
    last_report_version_id: int
    last_consult_id: int
    ended_consults: int
    # A GP's date edit changes no id: the sum of the photos' dates, as epoch seconds, catches it.
    taken_at_sum: int


def case_fingerprint(store: CaseStore, actor: Actor, case_id: int) -> CaseFingerprint:
    """NotFound when the actor may no longer see the case (the page then stops watching)."""
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        photo_ids = select(PhotoSubmissionRow.id).where(PhotoSubmissionRow.case_id == case_id)
        photos, last_photo = s.execute(
            select(func.count(PhotoSubmissionRow.id), func.max(PhotoSubmissionRow.id)).where(
                PhotoSubmissionRow.case_id == case_id
            )
        ).one()
        taken = s.scalars(select(PhotoSubmissionRow.taken_at).where(PhotoSubmissionRow.case_id == case_id)).all()
        last_analysis = s.scalar(select(func.max(AnalysisRow.id)).where(AnalysisRow.photo_id.in_(photo_ids)))
        last_version = s.scalar(
            select(func.max(ReportVersionRow.id)).where(
                ReportVersionRow.report_id.in_(select(ReportRow.id).where(ReportRow.case_id == case_id))
            )
        )
        last_consult, ended = s.execute(
            select(func.max(VideoConsultRow.id), func.count(VideoConsultRow.ended_at)).where(
                VideoConsultRow.case_id == case_id
            )
        ).one()
        return CaseFingerprint(
            photos=photos or 0,
            last_photo_id=last_photo or 0,
            last_analysis_id=last_analysis or 0,
            last_report_version_id=last_version or 0,
            last_consult_id=last_consult or 0,
            ended_consults=ended or 0,
            taken_at_sum=sum(int(t.timestamp()) for t in taken if t is not None),
        )
