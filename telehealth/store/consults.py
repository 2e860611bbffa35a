"""Video consults: a clinician opens a call on a case and sends the patient a join link; this decides who may join.

The call itself runs in the streaming spine; this module only keeps the records and answers "may this credential
join this room, and on which side?". A patient joins with the key from their link (or their own session); a
clinician joins with their session and must be able to see the case. Every join and end is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select

from telehealth.errors import (
    Conflict,
    Forbidden,
    InvalidSession,
    NotFound,
    TelehealthError,
)
from telehealth.records import Actor, Role, as_utc, utc_now
from telehealth.session_tokens import SessionTokens
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.sessions import session_actor
from telehealth.store.tables import PatientRow, VideoConsultRow, WoundCaseRow
from telehealth.store.visibility import visible_case

ConsultSide = Literal["clinician", "patient"]
_CLINICIANS = (Role.gp, Role.admin)


@dataclass(frozen=True)
class ConsultRecord:
    id: int
    case_id: int
    room_id: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None

    @property
    def state(self) -> str:
        if self.ended_at is not None:
            return "ended"
        return "expired" if self.expires_at <= utc_now() else "open"


@dataclass(frozen=True)
class NewConsult:
    record: ConsultRecord
    patient_key: str  # the only time the plain key exists: it goes into the patient's link and is never stored


class JoinRefused(TelehealthError):
    status_code = 403


def _record(row: VideoConsultRow) -> ConsultRecord:
    return ConsultRecord(
        row.id,
        row.case_id,
        row.room_id,
        as_utc(row.created_at),
        as_utc(row.expires_at),
        as_utc(row.ended_at) if row.ended_at is not None else None,
    )


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def open_consult(store: CaseStore, actor: Actor, case_id: int, ttl_s: int) -> NewConsult:
    if actor.role not in _CLINICIANS:
        raise Forbidden("only a GP or an admin can start a video consult")
    key = secrets.token_urlsafe(24)
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        now = utc_now()
        row = VideoConsultRow(
            case_id=case_id,
            created_by=actor.user_id,
            room_id=secrets.token_urlsafe(12),
            patient_key_sha256=_key_hash(key),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
            ended_at=None,
        )
        s.add(row)
        s.flush()
        record_audit(s, actor.user_id, AuditAction.create, "video_consult", row.id)
        return NewConsult(_record(row), key)


def list_consults(store: CaseStore, actor: Actor, case_id: int) -> list[ConsultRecord]:
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        rows = s.scalars(
            select(VideoConsultRow).where(VideoConsultRow.case_id == case_id).order_by(VideoConsultRow.id)
        ).all()
        return [_record(r) for r in rows]


def clinician_consult(store: CaseStore, actor: Actor, consult_id: int) -> ConsultRecord:
    """A consult on a case the clinician can see (NotFound otherwise)."""
    if actor.role not in _CLINICIANS:
        raise Forbidden(f"this needs role admin or gp, you are {actor.role.value}")
    with store.db.session() as s:
        row = s.get(VideoConsultRow, consult_id)
        if row is None:
            raise NotFound(f"no consult {consult_id}")
        visible_case(s, actor, row.case_id)  # NotFound for another GP's patient: do not confirm the id exists
        return _record(row)


def end_consult(store: CaseStore, actor: Actor, consult_id: int) -> ConsultRecord:
    clinician_consult(store, actor, consult_id)
    with store.db.session() as s:
        row = s.get(VideoConsultRow, consult_id)
        assert row is not None
        if row.ended_at is None:
            row.ended_at = utc_now()
            record_audit(s, actor.user_id, AuditAction.end, "video_consult", consult_id)
        return _record(row)


def require_live(record: ConsultRecord) -> None:
    if record.state == "ended":
        raise Conflict("this consult has ended")
    if record.state == "expired":
        raise Conflict("this consult link has expired")


def authorize_join(
    store: CaseStore, tokens: SessionTokens, room_id: str, credential: str
) -> tuple[ConsultSide, ConsultRecord]:
    """Which side `credential` may take in room `room_id`; JoinRefused (with the reason) otherwise. Blocking."""
    with store.db.session() as s:
        row = s.scalars(select(VideoConsultRow).where(VideoConsultRow.room_id == room_id)).first()
        if row is None:
            raise JoinRefused("no such consult: check the link")
        record = _record(row)
        if record.state == "ended":
            raise JoinRefused("this consult has ended")
        if record.state == "expired":
            raise JoinRefused("this consult link has expired: ask your clinician for a new one")
        if hmac.compare_digest(_key_hash(credential), row.patient_key_sha256):
            patient_user = s.scalars(
                select(PatientRow.user_id)
                .join(WoundCaseRow, WoundCaseRow.patient_id == PatientRow.id)
                .where(WoundCaseRow.id == row.case_id)
            ).first()
            record_audit(s, patient_user, AuditAction.join_call, "video_consult", row.id)
            return "patient", record
        try:
            session_id = tokens.session_for_join(credential, room_id)
        except InvalidSession as exc:
            if exc.reason == "invalid session token":
                raise JoinRefused(
                    "invalid join key or session: open the link you were sent, or sign in again"
                ) from None
            raise JoinRefused(exc.reason) from None
        try:
            actor = session_actor(
                s, session_id, tokens.idle_s
            )  # in this transaction: a second one would wait on SQLite's write lock
        except InvalidSession as exc:
            raise JoinRefused(exc.reason) from None
        try:
            visible_case(s, actor, row.case_id)
        except NotFound:
            raise JoinRefused("you are not a participant of this consult") from None
        if actor.role is Role.patient:
            side: ConsultSide = "patient"
        elif actor.role in _CLINICIANS:
            side = "clinician"
        else:
            raise JoinRefused(f"role {actor.role.value} cannot join consults")
        record_audit(s, actor.user_id, AuditAction.join_call, "video_consult", row.id)
        return side, record
