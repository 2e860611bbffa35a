"""Domain errors, each carrying the HTTP status and a reason safe to show the user (never patient data)."""

from __future__ import annotations


class TelehealthError(Exception):
    status_code = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(TelehealthError):
    # Also used for objects that exist but are not the caller's: a 403 would tell a prober the id is real.
    status_code = 404


class Forbidden(TelehealthError):
    status_code = 403


class Conflict(TelehealthError):
    status_code = 409


class AccountError(TelehealthError):
    """Base for what add_user and invite acceptance refuse."""

    status_code = 422


class InvalidEmail(AccountError):
    pass


class WeakPassword(AccountError):
    pass


class UnknownRole(AccountError):
    pass


class DuplicateEmail(AccountError):
    status_code = 409


class InviteGone(TelehealthError):
    """A used or expired invite link (410: it existed and will never work again)."""

    status_code = 410


class SetupDone(TelehealthError):
    """The first-run setup link once an account exists (410: it will never work again)."""

    status_code = 410


class InvalidSession(TelehealthError):
    status_code = 401


class PhotoRejected(TelehealthError):
    """A submitted photo that is not stored; status 413, 415 or 422 and a reason the patient can act on."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code


class InvalidDate(TelehealthError):
    """A date that cannot be right (in the future, implausibly old)."""

    status_code = 422


class InvalidPatient(TelehealthError):
    """A patient's identity that cannot be recorded: no name, an impossible birth date, a malformed identifier."""

    status_code = 422


class DuplicateIdentifier(TelehealthError):
    """An MRN or NHS number another patient already has (409: the record exists; nothing was saved)."""

    status_code = 409
