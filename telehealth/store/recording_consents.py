"""Consent to record a case: recorded by a clinician, read before every recording starts, withdrawn (never deleted).

Every change and every read of the list is audited; the check before a recording (`consent_to_record`) is part of
starting it, which is audited itself.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from telehealth.errors import Conflict, Forbidden, NotFound
from telehealth.recording_records import ConsentRecord, RecordingPurpose, RecordingSource
from telehealth.records import Actor, Role, as_utc, utc_now
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.tables import RecordingConsentRow
from telehealth.store.visibility import visible_case

CLINICIANS = (Role.gp, Role.surgeon, Role.admin)


class NoConsent(Forbidden):
    """Recording refused: the case has no consent in force that covers it."""


def consent_record(row: RecordingConsentRow) -> ConsentRecord:
    return ConsentRecord(
        row.id,
        row.case_id,
        row.representative_name,
        row.recorded_by,
        as_utc(row.consented_at),
        RecordingPurpose(row.purpose),
        row.patient_video,
        row.patient_audio,
        None if row.withdrawn_at is None else as_utc(row.withdrawn_at),
        row.withdrawn_by,
    )


def _clinician(actor: Actor) -> None:
    if actor.role not in CLINICIANS:
        raise Forbidden(f"recording consent is taken by a GP, surgeon or admin; you are {actor.role.value}")


def record_consent(
    store: CaseStore,
    actor: Actor,
    case_id: int,
    purpose: RecordingPurpose,
    patient_video: bool,
    patient_audio: bool,
    representative_name: str | None = None,
    consented_at: datetime | None = None,
) -> ConsentRecord:
    """Write down a consent the clinician took (from the patient, or their named representative)."""
    _clinician(actor)
    now = utc_now()
    when = now if consented_at is None else as_utc(consented_at)
    if when > now:
        raise Conflict(f"consent cannot be given in the future: {when.isoformat()}")
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        row = RecordingConsentRow(
            case_id=case_id,
            representative_name=representative_name,
            recorded_by=actor.user_id,
            consented_at=when,
            purpose=purpose.value,
            patient_video=patient_video,
            patient_audio=patient_audio,
            withdrawn_at=None,
            withdrawn_by=None,
        )
        s.add(row)
        s.flush()
        record_audit(s, actor.user_id, AuditAction.create, "recording_consent", row.id)
        return consent_record(row)


def withdraw_consent(store: CaseStore, actor: Actor, case_id: int, consent_id: int) -> ConsentRecord:
    """Mark a consent withdrawn from now on (recordings made under it stay, as consented at the time)."""
    _clinician(actor)
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        row = s.get(RecordingConsentRow, consent_id)
        if row is None or row.case_id != case_id:
            raise NotFound(f"no recording consent {consent_id} on case {case_id}")
        if row.withdrawn_at is None:
            row.withdrawn_at = utc_now()
            row.withdrawn_by = actor.user_id
            record_audit(s, actor.user_id, AuditAction.withdraw, "recording_consent", consent_id)
        return consent_record(row)


def list_consents(store: CaseStore, actor: Actor, case_id: int) -> list[ConsentRecord]:
    _clinician(actor)
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        rows = s.scalars(
            select(RecordingConsentRow).where(RecordingConsentRow.case_id == case_id).order_by(RecordingConsentRow.id)
        ).all()
        record_audit(s, actor.user_id, AuditAction.view, "recording_consents", case_id)
        return [consent_record(r) for r in rows]


def active_consent(s: Session, case_id: int, source: RecordingSource) -> ConsentRecord:
    """The newest consent in force on the case that covers `source`; NoConsent naming why otherwise."""
    rows = s.scalars(
        select(RecordingConsentRow)
        .where(RecordingConsentRow.case_id == case_id, RecordingConsentRow.withdrawn_at.is_(None))
        .order_by(RecordingConsentRow.id.desc())
    ).all()
    if not rows:
        raise NoConsent(f"no recording consent on case {case_id}")
    if source is RecordingSource.consult:
        covering = [r for r in rows if r.patient_video]
        if not covering:
            raise NoConsent(f"the recording consent on case {case_id} does not cover the patient's video")
        return consent_record(covering[0])
    return consent_record(rows[0])


def consent_to_record(store: CaseStore, actor: Actor, case_id: int, source: RecordingSource) -> ConsentRecord:
    """May `actor` record case `case_id` now? The consent that allows it, or NotFound / Forbidden / NoConsent."""
    _clinician(actor)
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        return active_consent(s, case_id, source)
