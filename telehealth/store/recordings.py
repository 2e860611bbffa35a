"""Recordings on a case: opened under a consent in force, closed with how they ended, listed, played, deleted by an
admin and swept when older than the retention period. Every start, stop, view and delete is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from telehealth.errors import Forbidden, NotFound
from telehealth.recording_files import RecordingFiles
from telehealth.recording_records import RecordingRecord, RecordingSource
from telehealth.records import Actor, Role, as_utc, utc_now
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.recording_consents import CLINICIANS, active_consent
from telehealth.store.tables import RecordingRow, UserRow, WoundCaseRow
from telehealth.store.visibility import visible_case, visible_cases


def recording_record(row: RecordingRow) -> RecordingRecord:
    return RecordingRecord(
        row.id,
        row.case_id,
        row.consent_id,
        row.started_by,
        RecordingSource(row.source),
        row.video_file,
        row.findings_file,
        row.has_audio,
        as_utc(row.started_at),
        None if row.ended_at is None else as_utc(row.ended_at),
        row.duration_s,
        row.size_bytes,
        row.frames,
        row.end_reason,
    )


@dataclass(frozen=True)
class RecordingEnd:
    frames: int
    duration_s: float
    size_bytes: int
    end_reason: str | None
    stopped_by: int | None  # None: the server ended it (failure, consent withdrawn, shutdown)


def open_recording(
    store: CaseStore, files: RecordingFiles, actor: Actor, case_id: int, source: RecordingSource, has_audio: bool
) -> RecordingRecord:
    """A new recording row under the consent in force now (checked in this transaction: a withdrawal that just
    committed refuses it)."""
    if actor.role not in CLINICIANS:
        raise Forbidden(f"recordings are started by a GP, surgeon or admin; you are {actor.role.value}")
    video, findings = files.new_names(case_id)
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        consent = active_consent(s, case_id, source)
        row = RecordingRow(
            case_id=case_id,
            consent_id=consent.id,
            started_by=actor.user_id,
            source=source.value,
            video_file=video,
            findings_file=findings,
            has_audio=has_audio and consent.patient_audio,
            started_at=utc_now(),
        )
        s.add(row)
        s.flush()
        record_audit(s, actor.user_id, AuditAction.start_recording, "recording", row.id)
        return recording_record(row)


def close_recording(store: CaseStore, recording_id: int, end: RecordingEnd) -> RecordingRecord:
    with store.db.session() as s:
        row = s.get(RecordingRow, recording_id)
        if row is None:
            raise NotFound(f"no recording {recording_id}")
        if row.ended_at is None:
            row.ended_at = utc_now()
            row.frames = end.frames
            row.duration_s = end.duration_s
            row.size_bytes = end.size_bytes
            row.end_reason = None if end.end_reason is None else end.end_reason[:200]
            record_audit(s, end.stopped_by, AuditAction.stop_recording, "recording", recording_id)
        return recording_record(row)


def list_recordings(store: CaseStore, actor: Actor, case_id: int) -> list[tuple[RecordingRecord, str]]:
    """The case's recordings, oldest first, each with the name of who started it (display name, else email)."""
    if actor.role not in CLINICIANS:
        raise Forbidden(f"recordings are for clinicians; you are {actor.role.value}")
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        rows = s.execute(
            select(RecordingRow, UserRow.display_name, UserRow.email)
            .join(UserRow, UserRow.id == RecordingRow.started_by)
            .where(RecordingRow.case_id == case_id)
            .order_by(RecordingRow.id)
        ).all()
        record_audit(s, actor.user_id, AuditAction.view, "recordings", case_id)
        return [(recording_record(row), name or email) for row, name, email in rows]


def view_recording(store: CaseStore, actor: Actor, recording_id: int, audit: bool = True) -> RecordingRecord:
    """A recording on a case the actor can see (NotFound otherwise); audited as a view unless `audit` is off (the
    player's later range requests of the same file)."""
    if actor.role not in CLINICIANS:
        raise Forbidden(f"recordings are for clinicians; you are {actor.role.value}")
    with store.db.session() as s:
        row = s.scalars(
            select(RecordingRow)
            .where(RecordingRow.id == recording_id)
            .where(RecordingRow.case_id.in_(visible_cases(actor).with_only_columns(WoundCaseRow.id)))
        ).first()
        if row is None:
            raise NotFound(f"no recording {recording_id}")
        if audit:
            record_audit(s, actor.user_id, AuditAction.view, "recording", recording_id)
        return recording_record(row)


def delete_recording(store: CaseStore, files: RecordingFiles, actor: Actor, recording_id: int) -> RecordingRecord:
    """An admin removes a finished recording: the row (audited) first, then its files."""
    if actor.role is not Role.admin:
        raise Forbidden(f"only an admin can delete recordings; you are {actor.role.value}")
    with store.db.session() as s:
        row = s.get(RecordingRow, recording_id)
        if row is None:
            raise NotFound(f"no recording {recording_id}")
        if row.ended_at is None:
            raise Forbidden("this recording is still running: stop it first")
        record = recording_record(row)
        s.delete(row)
        record_audit(s, actor.user_id, AuditAction.delete, "recording", recording_id)
    files.delete(record.video_file, record.findings_file)
    return record


def sweep_expired(
    store: CaseStore, files: RecordingFiles, retention_days: int, now: datetime | None = None
) -> list[int]:
    """Delete finished recordings older than `retention_days` (audited, actor null: the server); their ids."""
    cutoff = (now or utc_now()) - timedelta(days=retention_days)
    removed: list[tuple[int, str, str]] = []
    with store.db.session() as s:
        rows = s.scalars(
            select(RecordingRow).where(RecordingRow.started_at < cutoff, RecordingRow.ended_at.is_not(None))
        ).all()
        for row in rows:
            removed.append((row.id, row.video_file, row.findings_file))
            s.delete(row)
            record_audit(s, None, AuditAction.expire, "recording", row.id)
    for _id, video, findings in removed:
        files.delete(video, findings)
    return [rid for rid, _v, _f in removed]


def unfinished_recordings(store: CaseStore) -> list[RecordingRecord]:
    """Recordings with no end: at start-up, those the previous run never closed."""
    with store.db.session() as s:
        rows = s.scalars(select(RecordingRow).where(RecordingRow.ended_at.is_(None)).order_by(RecordingRow.id)).all()
        return [recording_record(r) for r in rows]
