"""Plain records the store hands out, so nothing outside the store holds a live ORM object or session, and the
values (roles, statuses, times) they carry."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime


class Role(str, enum.Enum):
    patient = "patient"
    gp = "gp"
    surgeon = "surgeon"
    admin = "admin"


class ReportStatus(str, enum.Enum):
    draft = "draft"
    signed = "signed"


class PhotoSource(str, enum.Enum):
    """Where a photo came from: DICOM calls the first a photograph, the others captured frames."""

    patient_upload = "patient_upload"
    consult_capture = "consult_capture"


class IdentifierKind(str, enum.Enum):
    """The patient identifiers a clinic records; each is unique within its kind."""

    mrn = "mrn"  # the hospital's medical record number
    nhs_number = "nhs_number"  # ten digits with a modulus-11 check digit


class WoundType(str, enum.Enum):
    diabetic_foot_ulcer = "diabetic_foot_ulcer"
    venous_leg_ulcer = "venous_leg_ulcer"
    arterial_ulcer = "arterial_ulcer"
    pressure_injury = "pressure_injury"
    surgical_wound = "surgical_wound"
    traumatic_wound = "traumatic_wound"
    burn = "burn"
    other = "other"

    @property
    def display(self) -> str:
        """As a clinician writes it: "diabetic foot ulcer"."""
        return "other wound" if self is WoundType.other else self.value.replace("_", " ")


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
    display_name: str | None = None

    @property
    def shown_name(self) -> str:
        """The name reports sign with: the display name, else the email."""
        return self.display_name or self.email


@dataclass(frozen=True)
class PatientIdentity:
    """Who a patient is. Every field is None only on records made before identity was asked for."""

    full_name: str | None
    birth_date: date | None
    identifier_kind: IdentifierKind | None
    identifier_value: str | None


@dataclass(frozen=True)
class PatientRecord:
    id: int
    identity: PatientIdentity
    gp_user_id: int | None
    has_account: bool  # False until the patient accepts an invite
    created_at: datetime


@dataclass(frozen=True)
class CaseRecord:
    id: int
    patient_id: int
    status: str
    label: str | None  # the wound's site
    created_at: datetime
    wound_type: WoundType | None = None
    onset_date: date | None = None


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
    source: PhotoSource = PhotoSource.patient_upload


@dataclass(frozen=True)
class InviteRecord:
    token: str  # the only time the plain token exists: it goes into the link and is never stored
    patient_id: int
    expires_at: datetime
