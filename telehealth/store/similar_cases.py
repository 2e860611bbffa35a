"""Which earlier photos a similar-cases query may return, and what is shown of each: the visibility rules of
retrieval, kept beside the store's other rules.

A query photo must be visible to the caller (else NotFound, as everywhere). Candidates are stored photos taken
strictly before it, from cases other than its own (that case's history is on its own page already), in the cases
the caller may see; with clinic-wide retrieval on, from every case in the clinic, those of patients the caller does
not look after marked for de-identification. Blocking: call from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from telehealth.errors import NotFound
from telehealth.records import Actor, FileState, PhotoRecord, as_utc
from telehealth.store.analyses import AnalysisRecord, latest_analysis_records
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore, photo_record
from telehealth.store.tables import PhotoSubmissionRow, WoundCaseRow
from telehealth.store.visibility import visible_cases, visible_photo


@dataclass(frozen=True)
class Candidate:
    case_id: int
    identified: bool  # True: the caller may see its case (shown in full); False: admitted only clinic-wide


@dataclass(frozen=True)
class SimilarQuery:
    photo_id: int
    case_id: int
    taken_at: datetime
    candidates: dict[int, Candidate]  # by photo id: the earlier photos the query may return


@dataclass(frozen=True)
class MatchedCase:
    case_id: int
    label: str | None
    wound_type: str | None
    onset_date: date | None
    identified: bool  # False: the caller does not look after this patient; show it de-identified
    items: list[tuple[PhotoRecord, AnalysisRecord | None]]  # every photo of the case, oldest first (its outcome)


@dataclass(frozen=True)
class MatchedPhoto:
    photo: PhotoRecord
    analysis: AnalysisRecord | None
    case: MatchedCase


def _taken(row: PhotoSubmissionRow) -> datetime:
    return as_utc(row.taken_at if row.taken_at is not None else row.received_at)


def _scope(s: Session, actor: Actor, photo_id: int, clinic_wide: bool) -> SimilarQuery:
    query = visible_photo(s, actor, photo_id)
    taken = _taken(query)
    seen = set(s.scalars(visible_cases(actor).with_only_columns(WoundCaseRow.id)))
    rows = s.execute(
        select(PhotoSubmissionRow).where(
            PhotoSubmissionRow.case_id != query.case_id,
            PhotoSubmissionRow.file_state == FileState.stored.value,
        )
    ).scalars()
    candidates = {
        row.id: Candidate(row.case_id, row.case_id in seen)
        for row in rows
        # Compared here, not in SQL: SQLite keeps these columns as text, where a zone offset would not compare.
        if _taken(row) < taken and (clinic_wide or row.case_id in seen)
    }
    return SimilarQuery(query.id, query.case_id, taken, candidates)


def similar_query(store: CaseStore, actor: Actor, photo_id: int, clinic_wide: bool) -> SimilarQuery:
    """The query photo (NotFound unless visible) and its candidates; audited, a clinic-wide query as such too."""
    with store.db.session() as s:
        scope = _scope(s, actor, photo_id, clinic_wide)
        record_audit(s, actor.user_id, AuditAction.view, "similar_cases", photo_id)
        if clinic_wide:
            record_audit(s, actor.user_id, AuditAction.view, "similar_clinic_wide", photo_id)
        return scope


def matched_photos(store: CaseStore, actor: Actor, query: SimilarQuery, photo_ids: list[int]) -> list[MatchedPhoto]:
    """What is shown of each matched photo (in the order given), with its case's photos and analyses for the
    outcome. Only the query's candidates are read; each de-identified case shown is audited."""
    wanted = [p for p in photo_ids if p in query.candidates]
    if not wanted:
        return []
    with store.db.session() as s:
        photos = {r.id: r for r in s.scalars(select(PhotoSubmissionRow).where(PhotoSubmissionRow.id.in_(wanted)))}
        case_ids = sorted({r.case_id for r in photos.values()})
        cases = {c.id: c for c in s.scalars(select(WoundCaseRow).where(WoundCaseRow.id.in_(case_ids)))}
        case_photos = s.scalars(
            select(PhotoSubmissionRow).where(PhotoSubmissionRow.case_id.in_(case_ids)).order_by(PhotoSubmissionRow.id)
        ).all()
        analyses = latest_analysis_records(s, [p.id for p in case_photos])
        matched_cases: dict[int, MatchedCase] = {}
        for case_id in case_ids:
            case = cases[case_id]
            items = [(photo_record(p), analyses.get(p.id)) for p in case_photos if p.case_id == case_id]
            identified = next(query.candidates[p].identified for p in wanted if photos[p].case_id == case_id)
            matched_cases[case_id] = MatchedCase(
                case_id, case.label, case.wound_type, case.onset_date, identified, items
            )
            record_audit(
                s, actor.user_id, AuditAction.view, "similar_case" if identified else "similar_deidentified", case_id
            )
        return [
            MatchedPhoto(photo_record(photos[p]), analyses.get(p), matched_cases[photos[p].case_id]) for p in wanted
        ]


def similar_thumbnail_photo(
    store: CaseStore, actor: Actor, query_photo_id: int, photo_id: int, clinic_wide: bool
) -> PhotoRecord:
    """A matched photo for its thumbnail, under the same rule as the query (NotFound otherwise); audited."""
    with store.db.session() as s:
        scope = _scope(s, actor, query_photo_id, clinic_wide)
        if photo_id not in scope.candidates:
            raise NotFound(f"no similar photo {photo_id} for photo {query_photo_id}")
        row = s.get(PhotoSubmissionRow, photo_id)
        if row is None or not store.files.exists(row.sha256):
            raise NotFound(f"photo {photo_id} file is missing")
        record_audit(s, actor.user_id, AuditAction.view, "similar_thumbnail", photo_id)
        return photo_record(row)
