"""Plain records the store hands out, so nothing outside the store holds a live ORM object or session, and the
values (roles, statuses, times) they carry."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime


class Role(str, enum.Enum):
    patient = "patient"
    gp = "gp"
    surgeon = "surgeon"
    admin = "admin"


class ReportStatus(str, enum.Enum):
    draft = "draft"
    signed = "signed"


class FileState(str, enum.Enum):
    stored = "stored"
    # Set by start-up reconciliation when a row's file is gone, so the API can say so instead of failing later.
    missing = "missing"


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; everything is written in UTC, so say so."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Actor:
    """The authenticated caller: every store method takes one and checks access against it."""

    user_id: int
    role: Role


@dataclass(frozen=True)
class UserRecord:
    id: int
    email: str
    role: Role


@dataclass(frozen=True)
class CaseRecord:
    id: int
    patient_id: int
    status: str
    label: str | None
    created_at: datetime


@dataclass(frozen=True)
class PhotoRecord:
    id: int
    case_id: int
    received_at: datetime
    sha256: str
    width: int
    height: int
    byte_size: int
    media_type: str
    file_state: str
    taken_at: datetime  # when the photo was taken: its visit (the camera's date, the upload time, or a GP's edit)


@dataclass(frozen=True)
class InviteRecord:
    token: str  # the only time the plain token exists: it goes into the link and is never stored
    patient_id: int
    expires_at: datetime
