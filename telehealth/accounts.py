"""Accounts: creating users (the `scopecast user add` CLI calls add_user) and checking logins."""

from __future__ import annotations

import re

from sqlalchemy import select

from telehealth.audit import AuditAction, record_audit
from telehealth.case_store import CaseStore
from telehealth.errors import DuplicateEmail, InvalidEmail, InvalidSession, UnknownRole
from telehealth.records import UserRecord
from telehealth.tables import PatientRow, Role, UserRow, utc_now

# Deliberately loose: one @, something on both sides, a dot in the domain. Delivery is what really proves an email.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    if len(cleaned) > 320 or not _EMAIL.match(cleaned):
        raise InvalidEmail("not a valid email address")
    return cleaned


def parse_role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UnknownRole(f"unknown role {role!r}: use one of {', '.join(r.value for r in Role)}") from None


def add_user(store: CaseStore, email: str, password: str, role: str | Role) -> UserRecord:
    """Create an account. Raises InvalidEmail, WeakPassword, UnknownRole or DuplicateEmail (all AccountError,
    with a message fit to print). A patient account also gets its patient record (with no GP yet)."""
    address = normalize_email(email)
    kind = parse_role(role)
    store.passwords.check_strength(password)
    password_hash = store.passwords.hash(password)  # slow on purpose: done before the write lock is taken
    with store.db.session() as s:
        if s.scalars(select(UserRow.id).where(UserRow.email == address)).first() is not None:
            raise DuplicateEmail("an account with this email already exists")
        user = UserRow(email=address, password_hash=password_hash, role=kind.value, disabled=False, created_at=utc_now())
        s.add(user)
        s.flush()
        if kind is Role.patient:
            s.add(PatientRow(user_id=user.id, gp_user_id=None, created_at=utc_now()))
        record_audit(s, None, AuditAction.create, "user", user.id)
        return UserRecord(user.id, user.email, kind)


def authenticate(store: CaseStore, email: str, password: str) -> UserRecord:
    """The user for these credentials, or InvalidSession with one message for every failure (no account probing)."""
    try:
        address = normalize_email(email)
    except InvalidEmail:
        address = None
    with store.db.session() as s:
        user = None if address is None else s.scalars(select(UserRow).where(UserRow.email == address)).first()
        stored = None if user is None or user.disabled else user.password_hash
        if not store.passwords.verify(stored, password) or user is None:
            raise InvalidSession("wrong email or password")
        record_audit(s, user.id, AuditAction.login, "user", user.id)
        return UserRecord(user.id, user.email, Role(user.role))
