"""Wound analyses: the photo to analyse (with the case's last measured area), saving the outcome, reading it back."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from telehealth.errors import NotFound
from telehealth.evidence_files import EvidenceFiles
from telehealth.records import Actor, PhotoRecord, as_utc, utc_now
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore, photo_record
from telehealth.store.tables import AnalysisRow, PhotoSubmissionRow
from telehealth.store.visibility import visible_case, visible_photo
from telehealth.wound import PreviousMeasurement, StoredAnalysis, WoundAssessment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisRecord:
    id: int
    photo_id: int
    model_name: str
    model_version: str
    stored: StoredAnalysis
    evidence_path: str | None
    created_at: datetime

    @property
    def status(self) -> str:
        return self.stored.status

    @property
    def assessment(self) -> WoundAssessment | None:
        return self.stored.assessment


@dataclass(frozen=True)
class PhotoToAnalyse:
    photo_id: int
    sha256: str
    previous: PreviousMeasurement | None  # the case's last measured area before this photo


def _record(row: AnalysisRow) -> AnalysisRecord:
    return AnalysisRecord(
        row.id,
        row.photo_id,
        row.model_name,
        row.model_version,
        StoredAnalysis.model_validate(row.result),
        row.evidence_path,
        as_utc(row.created_at),
    )


def _previous_area(s: Session, photo: PhotoSubmissionRow) -> PreviousMeasurement | None:
    """The last measured area among the case's earlier photos (for the area-increase signal)."""
    rows = s.execute(
        select(AnalysisRow, PhotoSubmissionRow.received_at)
        .join(PhotoSubmissionRow, AnalysisRow.photo_id == PhotoSubmissionRow.id)
        .where(PhotoSubmissionRow.case_id == photo.case_id, PhotoSubmissionRow.id < photo.id)
        .order_by(PhotoSubmissionRow.id.desc(), AnalysisRow.id.desc())
    ).all()
    for row, received_at in rows:
        assessment = StoredAnalysis.model_validate(row.result).assessment
        if assessment is not None and assessment.measurement.area_cm2 is not None:
            return PreviousMeasurement(area_cm2=assessment.measurement.area_cm2, taken_at=as_utc(received_at))
    return None


def photo_to_analyse(store: CaseStore, photo_id: int) -> PhotoToAnalyse:
    with store.db.session() as s:
        photo = s.get(PhotoSubmissionRow, photo_id)
        if photo is None:
            raise NotFound(f"no photo {photo_id}")
        return PhotoToAnalyse(photo_id, photo.sha256, _previous_area(s, photo))


def save_analysis(
    store: CaseStore,
    photo_id: int,
    model_name: str,
    model_version: str,
    stored: StoredAnalysis,
    evidence_path: str | None,
) -> AnalysisRecord:
    with store.db.session() as s:
        row = AnalysisRow(
            photo_id=photo_id,
            model_name=model_name[:120],
            model_version=model_version[:64],
            result=stored.model_dump(mode="json"),
            evidence_path=evidence_path,
            created_at=utc_now(),
        )
        s.add(row)
        s.flush()
        record_audit(s, None, AuditAction.create, "analysis", row.id)
        return _record(row)


def _latest(s: Session, photo_id: int) -> AnalysisRow | None:
    return s.scalars(
        select(AnalysisRow).where(AnalysisRow.photo_id == photo_id).order_by(AnalysisRow.id.desc())
    ).first()


def read_analysis(store: CaseStore, actor: Actor, photo_id: int) -> AnalysisRecord | None:
    """The photo's latest analysis (None while it is pending); NotFound for a photo the caller may not see."""
    with store.db.session() as s:
        visible_photo(s, actor, photo_id)
        row = _latest(s, photo_id)
        record_audit(s, actor.user_id, AuditAction.view, "analysis", None if row is None else row.id)
        return None if row is None else _record(row)


def read_evidence(store: CaseStore, evidence: EvidenceFiles, actor: Actor, photo_id: int) -> bytes:
    with store.db.session() as s:
        visible_photo(s, actor, photo_id)
        row = _latest(s, photo_id)
        if row is None or row.evidence_path is None:
            raise NotFound(f"photo {photo_id} has no evidence image (not analysed)")
        record_audit(s, actor.user_id, AuditAction.view, "evidence", row.id)
        name = row.evidence_path
    return evidence.read(name)


def case_analyses(
    store: CaseStore, actor: Actor, case_id: int, audit_as: str = "trend"
) -> list[tuple[PhotoRecord, AnalysisRecord | None]]:
    """Every photo of a visible case (oldest first) with its latest analysis; audited as one view of the case."""
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        photos = s.scalars(
            select(PhotoSubmissionRow).where(PhotoSubmissionRow.case_id == case_id).order_by(PhotoSubmissionRow.id)
        ).all()
        out = []
        for p in photos:
            row = _latest(s, p.id)
            out.append((photo_record(p), None if row is None else _record(row)))
        record_audit(s, actor.user_id, AuditAction.view, audit_as, case_id)
        return out


def analysis_by_id(store: CaseStore, analysis_id: int | None) -> AnalysisRecord | None:
    """An analysis a report names; the caller has already been checked against the report's case."""
    if analysis_id is None:
        return None
    with store.db.session() as s:
        row = s.get(AnalysisRow, analysis_id)
        return None if row is None else _record(row)


def unanalysed_photo_ids(store: CaseStore) -> list[int]:
    """Stored photos with no analysis yet (the server stopped before it ran): the runner queues them at start-up."""
    with store.db.session() as s:
        analysed = select(AnalysisRow.photo_id)
        return list(s.scalars(select(PhotoSubmissionRow.id).where(PhotoSubmissionRow.id.not_in(analysed))))


def latest_analysis_records(s: Session, photo_ids: list[int]) -> dict[int, AnalysisRecord]:
    """Each photo's latest analysis (photos without one are absent), for callers that already checked access."""
    if not photo_ids:
        return {}
    rows = s.scalars(select(AnalysisRow).where(AnalysisRow.photo_id.in_(photo_ids)).order_by(AnalysisRow.id)).all()
    return {row.photo_id: _record(row) for row in rows}  # ascending ids: the latest one wins
