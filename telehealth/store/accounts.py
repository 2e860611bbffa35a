"""User accounts: creating one (with its patient record for a patient) and checking a login."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from telehealth.errors import DuplicateEmail, InvalidSession, NotFound
from telehealth.records import Role, UserRecord, utc_now
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.tables import PatientRow, UserRow


def insert_user(store: CaseStore, email: str, password_hash: str, role: Role) -> UserRecord:
    """A new account for a normalised email; DuplicateEmail when one exists. A patient also gets a patient record."""
    with store.db.session() as s:
        if s.scalars(select(UserRow.id).where(UserRow.email == email)).first() is not None:
            raise DuplicateEmail("an account with this email already exists")
        user = UserRow(email=email, password_hash=password_hash, role=role.value, disabled=False, created_at=utc_now())
        s.add(user)
        s.flush()
        if role is Role.patient:
            s.add(PatientRow(user_id=user.id, gp_user_id=None, created_at=utc_now()))
        record_audit(s, None, AuditAction.create, "user", user.id)
        return UserRecord(user.id, user.email, role)


def check_login(store: CaseStore, email: str | None, password_matches: Callable[[str | None], bool]) -> UserRecord:
    """The enabled account whose stored hash `password_matches` accepts, audited as a login; otherwise InvalidSession
    with one message for every failure (no account probing). `password_matches(None)` must still do the slow work."""
    with store.db.session() as s:
        user = None if email is None else s.scalars(select(UserRow).where(UserRow.email == email)).first()
        stored = None if user is None or user.disabled else user.password_hash
        if not password_matches(stored) or user is None:
            raise InvalidSession("wrong email or password")
        record_audit(s, user.id, AuditAction.login, "user", user.id)
        return UserRecord(user.id, user.email, Role(user.role), user.display_name)


def set_display_name(store: CaseStore, user_id: int, display_name: str | None) -> UserRecord:
    """Set (or clear, with None) the name signed reports show for this account; audited as an edit."""
    with store.db.session() as s:
        user = s.get(UserRow, user_id)
        if user is None:
            raise NotFound("no such user")
        user.display_name = display_name
        record_audit(s, user_id, AuditAction.edit, "user_display_name", user_id)
        return UserRecord(user.id, user.email, Role(user.role), user.display_name)
