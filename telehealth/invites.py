"""One-time invite links: a GP invites a patient; accepting sets the patient's password and creates the account."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select

from telehealth.accounts import normalize_email
from telehealth.audit import AuditAction, record_audit
from telehealth.case_store import CaseStore
from telehealth.errors import DuplicateEmail, Forbidden, InviteGone, NotFound
from telehealth.records import Actor, InviteRecord, UserRecord
from telehealth.tables import InviteRow, PatientRow, Role, UserRow, as_utc, utc_now


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(store: CaseStore, actor: Actor, email: str, ttl_s: int) -> InviteRecord:
    if actor.role not in (Role.gp, Role.admin):
        raise Forbidden("only a GP or an admin can invite patients")
    address = normalize_email(email)
    token = secrets.token_urlsafe(32)
    with store.db.session() as s:
        if s.scalars(select(UserRow.id).where(UserRow.email == address)).first() is not None:
            raise DuplicateEmail("an account with this email already exists")
        # The inviting GP becomes the patient's GP: that is what lets them see the patient's cases.
        patient = PatientRow(user_id=None, gp_user_id=actor.user_id if actor.role is Role.gp else None, created_at=utc_now())
        s.add(patient)
        s.flush()
        now = utc_now()
        invite = InviteRow(
            token_sha256=token_hash(token), email=address, patient_id=patient.id, created_by=actor.user_id,
            created_at=now, expires_at=now + timedelta(seconds=ttl_s), used_at=None,
        )
        s.add(invite)
        s.flush()
        record_audit(s, actor.user_id, AuditAction.invite, "patient", patient.id)
        return InviteRecord(token, patient.id, invite.expires_at)


def accept_invite(store: CaseStore, token: str, password: str) -> UserRecord:
    """Create the patient's account from a live invite. NotFound for an unknown token; InviteGone (410) for a
    used or expired one, with which it was."""
    store.passwords.check_strength(password)
    password_hash = store.passwords.hash(password)
    with store.db.session() as s:
        invite = s.scalars(select(InviteRow).where(InviteRow.token_sha256 == token_hash(token))).first()
        if invite is None:
            raise NotFound("unknown invite link")
        if invite.used_at is not None:
            raise InviteGone("invite already used: log in with your password, or ask your GP for a new link")
        if as_utc(invite.expires_at) <= utc_now():
            raise InviteGone("invite expired: ask your GP for a new link")
        if s.scalars(select(UserRow.id).where(UserRow.email == invite.email)).first() is not None:
            raise DuplicateEmail("an account with this email already exists")
        user = UserRow(email=invite.email, password_hash=password_hash, role=Role.patient.value, disabled=False, created_at=utc_now())
        s.add(user)
        s.flush()
        patient = s.get(PatientRow, invite.patient_id)
        assert patient is not None  # foreign key
        patient.user_id = user.id
        invite.used_at = utc_now()
        record_audit(s, user.id, AuditAction.accept_invite, "patient", patient.id)
        return UserRecord(user.id, user.email, Role.patient)
