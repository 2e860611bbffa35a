"""One-time invite links: a GP invites a patient by email; accepting the link signs the patient in.

An invite is made the same way whether or not the email already has an account, so the answer tells the GP nothing
about who is registered. Accepting it then depends on the email:

* no account yet: the password given becomes the new patient account's (the password policy applies);
* a patient account: the password given must be that account's own (a wrong one is refused and counts as a failed
  sign-in), and the patient then becomes the inviting GP's: their record, with their cases, is the one the invite
  named (so the patient_id the GP was given keeps working), and a previous GP no longer sees them;
* a staff account (GP, surgeon, admin): refused after the password check, since one account has one role.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from telehealth.accounts import normalize_email
from telehealth.errors import Conflict, Forbidden, InvalidSession, InviteGone, NotFound
from telehealth.login_throttle import LoginThrottle
from telehealth.records import Actor, InviteRecord, Role, UserRecord, as_utc, utc_now
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.tables import InviteRow, PatientRow, UserRow, WoundCaseRow
from telehealth.store.visibility import visible_patient

WRONG_PASSWORD = "wrong password: this email already has an account, enter its password to accept the invite"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(
    store: CaseStore, actor: Actor, email: str, ttl_s: int, patient_id: int | None = None
) -> InviteRecord:
    """A new invite: for an existing patient record (`patient_id`, the caller's own patient) or, without one, for a
    new empty record. Made the same way whoever the email belongs to (see the module's docstring)."""
    if actor.role not in (Role.gp, Role.admin):
        raise Forbidden("only a GP or an admin can invite patients")
    address = normalize_email(email)
    token = secrets.token_urlsafe(32)
    with store.db.session() as s:
        if patient_id is not None:
            try:
                patient = visible_patient(s, actor, patient_id)
            except NotFound:
                raise NotFound(
                    f"no patient {patient_id} among your patients: invite only patients you look after"
                ) from None
        else:
            # The inviting GP becomes the patient's GP: that is what lets them see the patient's cases.
            patient = PatientRow(
                user_id=None, gp_user_id=actor.user_id if actor.role is Role.gp else None, created_at=utc_now()
            )
            s.add(patient)
            s.flush()
        now = utc_now()
        invite = InviteRow(
            token_sha256=token_hash(token),
            email=address,
            patient_id=patient.id,
            created_by=actor.user_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
            used_at=None,
        )
        s.add(invite)
        s.flush()
        record_audit(s, actor.user_id, AuditAction.invite, "patient", patient.id)
        return InviteRecord(token, patient.id, invite.expires_at)


@dataclass(frozen=True)
class _Account:
    id: int
    role: Role
    password_hash: str | None  # None: disabled (never matches)


def _live_invite(s: Session, token: str) -> InviteRow:
    invite = s.scalars(select(InviteRow).where(InviteRow.token_sha256 == token_hash(token))).first()
    if invite is None:
        raise NotFound("unknown invite link")
    if invite.used_at is not None:
        raise InviteGone("invite already used: log in with your password, or ask your GP for a new link")
    if as_utc(invite.expires_at) <= utc_now():
        raise InviteGone("invite expired: ask your GP for a new link")
    return invite


def _account(s: Session, email: str) -> _Account | None:
    user = s.scalars(select(UserRow).where(UserRow.email == email)).first()
    if user is None:
        return None
    return _Account(user.id, Role(user.role), None if user.disabled else user.password_hash)


def accept_invite(
    store: CaseStore, token: str, password: str, throttle: LoginThrottle | None = None, address: str | None = None
) -> UserRecord:
    """The patient account the live invite `token` signs in: created (new email) or proven by its own password
    (existing account). NotFound for an unknown token; InviteGone (410) for a used or expired one; InvalidSession
    (401) for a wrong password, counted on `throttle` like a failed sign-in; Conflict (409) for a staff account."""
    with store.db.session() as s:  # a short read: the slow password work happens outside the write lock
        invite = _live_invite(s, token)
        email = invite.email
        account = _account(s, email)
    if account is None:
        return _create_patient(store, token, password)
    if throttle is not None:
        throttle.check(email, address)
    if not store.passwords.verify(account.password_hash, password):
        if throttle is not None:
            throttle.failed(email, address)
        raise InvalidSession(WRONG_PASSWORD)
    if throttle is not None:
        throttle.succeeded(email)
    if account.role is not Role.patient:
        raise Conflict(
            "this email belongs to a staff account, which cannot also be a patient: ask for an invite to another email"
        )
    return _link_patient(store, token, account)


def _create_patient(store: CaseStore, token: str, password: str) -> UserRecord:
    store.passwords.check_strength(password)
    password_hash = store.passwords.hash(password)
    with store.db.session() as s:
        invite = _live_invite(s, token)
        if _account(s, invite.email) is not None:  # registered between the read and now
            raise Conflict("an account with this email was just created: open the link again and enter its password")
        user = UserRow(
            email=invite.email,
            password_hash=password_hash,
            role=Role.patient.value,
            disabled=False,
            created_at=utc_now(),
        )
        s.add(user)
        s.flush()
        patient = s.get(PatientRow, invite.patient_id)
        assert patient is not None  # foreign key
        patient.user_id = user.id
        invite.used_at = utc_now()
        record_audit(s, user.id, AuditAction.accept_invite, "patient", patient.id)
        return UserRecord(user.id, user.email, Role.patient)


def _link_patient(store: CaseStore, token: str, account: _Account) -> UserRecord:
    with store.db.session() as s:
        invite = _live_invite(s, token)
        current = _account(s, invite.email)
        if current is None or current != account:  # removed, disabled or changed since the password was checked
            raise InvalidSession(WRONG_PASSWORD)
        invited = s.get(PatientRow, invite.patient_id)
        assert invited is not None  # foreign key
        previous = s.scalars(select(PatientRow).where(PatientRow.user_id == account.id)).first()
        if previous is not None and previous.id != invited.id:
            # The invited record takes over the person's history; the previous one goes (patients.user_id is unique).
            previous.user_id = None
            s.flush()
            s.execute(update(WoundCaseRow).where(WoundCaseRow.patient_id == previous.id).values(patient_id=invited.id))
            s.execute(update(InviteRow).where(InviteRow.patient_id == previous.id).values(patient_id=invited.id))
            if invited.gp_user_id is None:  # an admin's invite names no GP: the patient keeps theirs
                invited.gp_user_id = previous.gp_user_id
            s.execute(delete(PatientRow).where(PatientRow.id == previous.id))
        invited.user_id = account.id
        invite.used_at = utc_now()
        record_audit(s, account.id, AuditAction.accept_invite, "patient", invited.id)
        email = s.get(UserRow, account.id).email  # type: ignore[union-attr]  # just read in this transaction
        return UserRecord(account.id, email, Role.patient)
