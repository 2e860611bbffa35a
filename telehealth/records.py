"""Plain records the store hands out, so nothing outside the store holds a live ORM object or session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from telehealth.tables import Role


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


@dataclass(frozen=True)
class InviteRecord:
    token: str  # the only time the plain token exists: it goes into the link and is never stored
    patient_id: int
    expires_at: datetime
