"""Accounts: creating users (the `scopecast user add` CLI calls add_user) and checking logins."""

from __future__ import annotations

import re

from telehealth.errors import AccountError, InvalidEmail, InvalidPatient, UnknownRole
from telehealth.patient_identity import clean_name
from telehealth.records import Role, UserRecord
from telehealth.store.accounts import check_login, insert_user
from telehealth.store.cases import CaseStore

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
    store.passwords.check_strength(password, user_inputs=(address,))
    password_hash = store.passwords.hash(password)  # slow on purpose: done before the write lock is taken
    return insert_user(store, address, password_hash, kind)


def authenticate(store: CaseStore, email: str, password: str) -> UserRecord:
    """The user for these credentials, or InvalidSession with one message for every failure (no account probing)."""
    try:
        address = normalize_email(email)
    except InvalidEmail:
        address = None
    return check_login(store, address, lambda stored_hash: store.passwords.verify(stored_hash, password))


def clean_display_name(name: str | None) -> str | None:
    """A clinician's name for signed reports: Unicode-normalised, single-spaced, no control characters, at most 120
    characters; blank clears it (the email stands in). AccountError (422) otherwise."""
    if name is None or not name.strip():
        return None
    try:
        text = clean_name(name)
    except InvalidPatient as exc:
        raise AccountError(exc.reason.replace("the patient's name", "the name")) from None
    if len(text) > 120:
        raise AccountError("the name is longer than 120 characters")
    return text
