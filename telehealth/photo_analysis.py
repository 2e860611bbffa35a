"""Wound analyses of stored photos: run one (system job, no caller), and read them back (caller checked and audited).

Every function is blocking (database, disk, image decode, model): async callers use a worker thread.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from telehealth.access import visible_case, visible_photo
from telehealth.analysis import PreviousMeasurement, Segmenter, analyse_wound_photo
from telehealth.analysis.segmentation import ContentNotRecognised
from telehealth.audit import AuditAction, record_audit
from telehealth.case_store import CaseStore, photo_record
from telehealth.errors import NotFound
from telehealth.evidence_files import EvidenceFiles
from telehealth.records import Actor, PhotoRecord
from telehealth.tables import AnalysisRow, PhotoSubmissionRow, as_utc, utc_now

log = logging.getLogger(__name__)

NOT_INSTALLED = "not analysed: wound model not installed"
ANALYSED, NOT_ANALYSED, FAILED = "analysed", "not_analysed", "failed"


@dataclass(frozen=True)
class AnalysisRecord:
    id: int
    photo_id: int
    model_name: str
    model_version: str
    result: dict[str, Any]  # {"status", "reason"?, "analysis"? (WoundAnalysis JSON without the PNG), "wound_box"?}
    evidence_path: str | None
    created_at: datetime

    @property
    def status(self) -> str:
        return str(self.result.get("status", FAILED))

    @property
    def analysis(self) -> dict[str, Any] | None:
        return self.result.get("analysis")


def _record(row: AnalysisRow) -> AnalysisRecord:
    return AnalysisRecord(row.id, row.photo_id, row.model_name, row.model_version, dict(row.result), row.evidence_path,
                          as_utc(row.created_at))


class _BoxRecorder:
    """Wraps a segmenter to remember the wound's bounding box (for the report draft's finding)."""

    def __init__(self, segment: Segmenter) -> None:
        self.segment = segment
        self.box: list[int] | None = None

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, str, str]:
        mask, name, version = self.segment(rgb)
        ys, xs = np.nonzero(np.asarray(mask))
        if len(xs):
            self.box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        return mask, name, version


def _previous_area(s: Session, photo: PhotoSubmissionRow) -> PreviousMeasurement | None:
    """The last measured area among the case's earlier photos (for the area-increase signal)."""
    rows = s.execute(
        select(AnalysisRow, PhotoSubmissionRow.received_at)
        .join(PhotoSubmissionRow, AnalysisRow.photo_id == PhotoSubmissionRow.id)
        .where(PhotoSubmissionRow.case_id == photo.case_id, PhotoSubmissionRow.id < photo.id)
        .order_by(PhotoSubmissionRow.id.desc(), AnalysisRow.id.desc())
    ).all()
    for row, received_at in rows:
        area = ((row.result or {}).get("analysis") or {}).get("measurement", {}).get("area_cm2")
        if area is not None:
            return PreviousMeasurement(area_cm2=area, taken_at=as_utc(received_at))
    return None


def analyse_stored_photo(
    store: CaseStore, evidence: EvidenceFiles, photo_id: int, segment: Segmenter | None, marker_mm: float = 20.0
) -> AnalysisRecord:
    """Analyse one stored photo and save the result; a missing model or a failure is saved as such, never raised."""
    with store.db.session() as s:
        photo = s.get(PhotoSubmissionRow, photo_id)
        if photo is None:
            raise NotFound(f"no photo {photo_id}")
        sha, previous = photo.sha256, _previous_area(s, photo)
    evidence_path = None
    model_name, model_version = "none", "-"
    if segment is None:
        result: dict[str, Any] = {"status": NOT_ANALYSED, "reason": NOT_INSTALLED}
    else:
        try:
            with Image.open(io.BytesIO(store.files.read(sha))) as img:
                rgb = np.asarray(img.convert("RGB"))  # stored photos already have EXIF orientation applied
            recorder = _BoxRecorder(segment)
            analysis = analyse_wound_photo(rgb, recorder, marker_mm=marker_mm, previous=previous)
            evidence_path = evidence.put(analysis.evidence.overlay_png)
            model_name, model_version = analysis.model.name, analysis.model.version
            result = {
                "status": ANALYSED,
                "analysis": analysis.model_dump(mode="json", exclude={"evidence": {"overlay_png"}}),
                "wound_box": recorder.box,
            }
        except ContentNotRecognised as exc:
            result = {"status": NOT_ANALYSED, "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a bad photo or model must not lose the upload; it is recorded
            log.warning("wound analysis failed", extra={"photo_id": photo_id, "error": type(exc).__name__})
            result = {"status": FAILED, "reason": f"analysis failed: {type(exc).__name__}"}
    with store.db.session() as s:
        row = AnalysisRow(photo_id=photo_id, model_name=model_name[:120], model_version=model_version[:64],
                          result=result, evidence_path=evidence_path, created_at=utc_now())
        s.add(row)
        s.flush()
        record_audit(s, None, AuditAction.create, "analysis", row.id)
        record = _record(row)
    log.info("wound analysis saved", extra={"photo_id": photo_id, "analysis_id": record.id, "status": record.status})
    return record


def _latest(s: Session, photo_id: int) -> AnalysisRow | None:
    return s.scalars(select(AnalysisRow).where(AnalysisRow.photo_id == photo_id).order_by(AnalysisRow.id.desc())).first()


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


def case_analyses(store: CaseStore, actor: Actor, case_id: int, audit_as: str = "trend") -> list[tuple[PhotoRecord, AnalysisRecord | None]]:
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
