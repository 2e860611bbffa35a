"""A GP's "Similar cases" for one photo: the nearest earlier photos of other cases the caller may see (or, with
clinic-wide retrieval on, of any case, de-identified where the caller does not look after the patient), one per
case, each with its visit, wound, measurements and how the case healed. Blocking: call from a worker thread.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel

from telehealth.records import Actor
from telehealth.similar.embedding_runner import NO_MODEL, EmbeddingRunner, SimilarState
from telehealth.similar.index import SearchHit
from telehealth.similar.outcome import CaseOutcome, case_outcome
from telehealth.store.cases import CaseStore
from telehealth.store.clinic_options import clinic_wide_similar_cases
from telehealth.store.embeddings import embedding_of
from telehealth.store.similar_cases import (
    MatchedPhoto,
    SimilarQuery,
    matched_photos,
    similar_query,
    similar_thumbnail_photo,
)

UPDATING = "similar cases are being updated"
# Candidates asked of the index per result wanted: results keep one photo per case, so a case with many similar
# photos must not crowd the others out.
OVERFETCH = 4


class AnswerStatus(str, enum.Enum):
    ok = "ok"
    updating = "updating"  # the index is being rebuilt or re-embedded for a new model version
    pending = "pending"  # this photo has no embedding yet (just sent); ask again shortly
    off = "off"  # no embedding model installed


class Measurements(BaseModel):
    area_cm2: float | None
    length_cm: float | None
    width_cm: float | None
    reason: str | None  # why not measured


class SimilarCase(BaseModel):
    photo_id: int
    score: float  # cosine similarity of the two photos' embeddings (1: the same image)
    thumbnail_url: str
    identified: bool  # False: another clinician's patient, shown de-identified
    case_id: int | None  # None when de-identified
    visit_date: str | None  # ISO date; None when de-identified (see the relative dates)
    days_before_query: int  # how long before the query photo this one was taken
    day_of_case: int  # days since the case's onset (or its first photo)
    wound_site: str | None  # the case's label: free text, so withheld when de-identified
    wound_type: str | None
    measurements: Measurements | None  # None: not analysed
    outcome: CaseOutcome


class SimilarAnswer(BaseModel):
    photo_id: int
    status: AnswerStatus
    message: str | None
    model_version: str | None
    backend: str
    clinic_wide: bool
    results: list[SimilarCase]


def _similar_case(query: SimilarQuery, match: MatchedPhoto, score: float) -> SimilarCase:
    photo, case = match.photo, match.case
    first = min((p.taken_at for p, _a in case.items), default=photo.taken_at).date()
    start = case.onset_date if case.onset_date is not None and case.onset_date <= first else first
    assessment = None if match.analysis is None else match.analysis.assessment
    m = None if assessment is None else assessment.measurement
    return SimilarCase(
        photo_id=photo.id,
        score=round(score, 4),
        thumbnail_url=f"/api/photos/{query.photo_id}/similar/{photo.id}/thumbnail",
        identified=case.identified,
        case_id=case.case_id if case.identified else None,
        visit_date=photo.taken_at.date().isoformat() if case.identified else None,
        days_before_query=(query.taken_at - photo.taken_at).days,
        day_of_case=(photo.taken_at.date() - start).days,
        wound_site=case.label if case.identified else None,
        wound_type=case.wound_type,
        measurements=None
        if m is None
        else Measurements(area_cm2=m.area_cm2, length_cm=m.length_cm, width_cm=m.width_cm, reason=m.reason),
        outcome=case_outcome(case.items),
    )


class SimilarCases:
    def __init__(self, store: CaseStore, runner: EmbeddingRunner, clinic_wide_default: bool) -> None:
        self.store = store
        self.runner = runner
        self._clinic_wide_default = clinic_wide_default

    @property
    def clinic_wide(self) -> bool:
        """The admin's switch (audited, kept in the database), else the setting. Blocking (one read)."""
        return clinic_wide_similar_cases(self.store, self._clinic_wide_default)

    def _answer(
        self,
        photo_id: int,
        status: AnswerStatus,
        message: str | None,
        results: list[SimilarCase] | None = None,
        clinic_wide: bool = False,
    ) -> SimilarAnswer:
        return SimilarAnswer(
            photo_id=photo_id,
            status=status,
            message=message,
            model_version=self.runner.model_version,
            backend=self.runner.index.backend,
            clinic_wide=clinic_wide,
            results=results or [],
        )

    def find(self, actor: Actor, photo_id: int, k: int) -> SimilarAnswer:
        """NotFound for a photo the caller may not see (checked, and the query audited, before anything else)."""
        wide = self.clinic_wide
        query = similar_query(self.store, actor, photo_id, wide)
        state = self.runner.state()
        if state is SimilarState.off:
            return self._answer(photo_id, AnswerStatus.off, NO_MODEL, clinic_wide=wide)
        version = self.runner.model_version
        if state is not SimilarState.ready or version is None or self.runner.index.model_version != version:
            return self._answer(photo_id, AnswerStatus.updating, UPDATING, clinic_wide=wide)
        vector = embedding_of(self.store, photo_id, version)
        if vector is None:
            return self._answer(
                photo_id, AnswerStatus.pending, "this photo is not indexed yet; try again shortly", clinic_wide=wide
            )
        if not query.candidates:
            return self._answer(
                photo_id, AnswerStatus.ok, "no earlier photos of other cases to compare with yet", clinic_wide=wide
            )
        hits = self.runner.index.search(vector, k * OVERFETCH, query.candidates.keys())
        best: dict[int, SearchHit] = {}  # case id -> its best photo (hits come best first)
        for hit in hits:
            best.setdefault(query.candidates[hit.photo_id].case_id, hit)
        shown = list(best.values())[:k]
        matches = matched_photos(self.store, actor, query, [h.photo_id for h in shown])
        results = [_similar_case(query, m, h.score) for m, h in zip(matches, shown, strict=True)]
        message = None if results else "no similar earlier photos found"
        return self._answer(photo_id, AnswerStatus.ok, message, results, clinic_wide=wide)

    def thumbnail_photo_sha256(self, actor: Actor, query_photo_id: int, photo_id: int) -> str:
        return similar_thumbnail_photo(self.store, actor, query_photo_id, photo_id, self.clinic_wide).sha256
