"""Request and response bodies of the telehealth API."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from telehealth.records import (
    CaseRecord,
    IdentifierKind,
    PatientRecord,
    PhotoRecord,
    PhotoSource,
    UserRecord,
    WoundType,
)

# The largest value a 64-bit signed integer column holds (SQLite INTEGER, PostgreSQL BIGINT): an id beyond it would
# reach the driver and fail there (an OverflowError, a 500) instead of here with a 422 naming the field.
MAX_ROW_ID = 2**63 - 1
_MAX_ROW_ID_DIGITS = len(str(MAX_ROW_ID))


def _whole_row_id(value: object) -> int:
    """Path segments arrive as text and JSON ids as numbers; anything else a client could mean by an id is refused
    rather than coerced: 1e23 and 5.0 (floats), true, "+5", " 5", "٣" (non-ASCII digits) and over-long digit runs."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_ROW_ID_DIGITS:
        value = int(value)
    # type() and not isinstance(): bool is an int subclass, and true must not read as id 1.
    if type(value) is not int or not 1 <= value <= MAX_ROW_ID:
        raise PydanticCustomError("row_id", "an id must be an integer from 1 to {max}", {"max": MAX_ROW_ID})
    return value


# The one type for every id a client sends, in a path or a body. The Field bounds are what the OpenAPI schema shows;
# the validator (which runs first) gives every refusal the same message. In a route, annotate the parameter and give
# no `= Path()` default: FastAPI would take that default's (empty) constraints instead of these.
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID), BeforeValidator(_whole_row_id)]


class _Body(BaseModel):
    # Unknown fields are refused, so a typo in a client is a clear 422 and not a silently ignored value.
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Body):
    email: str = Field(..., max_length=320)
    password: str = Field(..., max_length=1024)


class SetupRequest(_Body):
    """The first account, made from the first-run link (its token comes from the link's #token= fragment)."""

    token: str = Field(..., max_length=200)
    email: str = Field(..., max_length=320)
    password: str = Field(..., max_length=1024)


class InviteCreate(_Body):
    email: str = Field(..., max_length=320)


class InviteAccept(_Body):
    password: str = Field(..., max_length=1024)


class CaseCreate(_Body):
    patient_id: RowId | None = Field(
        None, description="required for GPs and admins; patients open cases for themselves"
    )
    label: str | None = Field(None, max_length=120, description="the wound's site, e.g. 'left heel'")
    wound_type: WoundType | None = None
    onset_date: date | None = Field(None, description="when the wound appeared, if known")


class PatientCreate(_Body):
    """A patient as the desk records them; every field is required (checked again, with reasons, in
    patient_identity.clean_identity)."""

    full_name: str = Field(..., max_length=400)
    birth_date: date
    identifier_kind: IdentifierKind = Field(..., description="mrn or nhs_number")
    identifier_value: str = Field(..., max_length=64)


class PatientInviteCreate(_Body):
    email: str = Field(..., max_length=320)


class UserOut(BaseModel):
    id: int
    email: str
    role: str
    display_name: str | None = None  # how signed reports name this account; None: the email

    @classmethod
    def of(cls, user: UserRecord) -> UserOut:
        return cls(id=user.id, email=user.email, role=user.role.value, display_name=user.display_name)


class ProfileEdit(_Body):
    display_name: str | None = Field(..., max_length=400, description="e.g. 'Dr Jane Smith'; null or blank clears it")


class SessionOut(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserOut
    csrf_token: str  # send as X-CSRF-Token with writes that rely on the session cookie


class CurrentSession(BaseModel):
    """What a page reloaded with the session cookie needs: who is signed in and the CSRF token for its writes."""

    user: UserOut
    csrf_token: str
    idle_timeout_s: int | None


class InviteOut(BaseModel):
    invite_url: str
    expires_at: datetime
    patient_id: int
    qr_svg_data_url: str  # the link as a QR code (SVG), to show on screen for the patient's phone to scan


class PatientOut(BaseModel):
    id: int
    full_name: str | None  # None only on records made before identity was asked for
    birth_date: date | None
    identifier_kind: IdentifierKind | None
    identifier_value: str | None
    has_account: bool
    created_at: datetime

    @classmethod
    def of(cls, patient: PatientRecord) -> PatientOut:
        who = patient.identity
        return cls(
            id=patient.id,
            full_name=who.full_name,
            birth_date=who.birth_date,
            identifier_kind=who.identifier_kind,
            identifier_value=who.identifier_value,
            has_account=patient.has_account,
            created_at=patient.created_at,
        )


class CaseOut(BaseModel):
    id: int
    patient_id: int
    status: str
    label: str | None
    created_at: datetime
    wound_type: WoundType | None = None
    onset_date: date | None = None

    @classmethod
    def of(cls, case: CaseRecord) -> CaseOut:
        return cls(
            id=case.id,
            patient_id=case.patient_id,
            status=case.status,
            label=case.label,
            created_at=case.created_at,
            wound_type=case.wound_type,
            onset_date=case.onset_date,
        )


class TrendArrow(BaseModel):
    """The last two measured visits of a case compared: what the patients list shows beside the area."""

    direction: str  # "smaller", "larger" or "stable" (within 10%)
    change_pct: float
    since: date


class PatientSummaryOut(PatientOut):
    cases: list[CaseOut]
    latest_photo_id: int | None
    latest_photo_taken_at: datetime | None
    latest_thumbnail_url: str | None
    latest_area_cm2: float | None
    latest_area_reason: str | None  # why the latest photo has no area, when it has none
    trend: TrendArrow | None
    trend_note: str | None  # why there is no arrow (fewer than two measured visits)


class PhotoReceipt(BaseModel):
    id: int
    case_id: int
    received_at: datetime
    taken_at: datetime  # the visit this photo belongs to
    sha256: str
    width: int
    height: int
    byte_size: int
    media_type: str
    file_state: str
    source: PhotoSource  # a patient's upload, or a frame a clinician captured in a consult
    photo_url: str
    thumbnail_url: str

    @classmethod
    def of(cls, photo: PhotoRecord) -> PhotoReceipt:
        return cls(
            id=photo.id,
            case_id=photo.case_id,
            received_at=photo.received_at,
            taken_at=photo.taken_at,
            sha256=photo.sha256,
            width=photo.width,
            height=photo.height,
            byte_size=photo.byte_size,
            media_type=photo.media_type,
            file_state=photo.file_state,
            source=photo.source,
            photo_url=f"/api/photos/{photo.id}",
            thumbnail_url=f"/api/photos/{photo.id}/thumbnail",
        )


class CaseDetail(CaseOut):
    photos: list[PhotoReceipt]


class ReportSections(_Body):
    findings: list[str] | None = Field(None, max_length=100)
    impression: str | None = Field(None, max_length=10_000)
    follow_up: str | None = Field(None, max_length=10_000)
    uncertainty: str | None = Field(None, max_length=10_000)


class ReportEdit(_Body):
    """A clinician's change to a draft (or the content of an amendment): the text and/or the sections."""

    text: str | None = Field(None, max_length=50_000)
    sections: ReportSections | None = None


class ReportVersionOut(BaseModel):
    version_id: int
    version: int
    status: str
    signed_at: datetime | None
    amends_version_id: int | None


class ReportOut(BaseModel):
    id: int
    case_id: int
    version_id: int
    version: int
    status: str
    notice: str | None  # "AI draft — requires clinician signature" until signed
    body: dict
    signed_at: datetime | None
    signed_by: int | None
    amends_version_id: int | None
    versions: list[ReportVersionOut]


class PhotoDateEdit(BaseModel):
    """A clinician's correction of when a photo was taken: a date (noon UTC is stored) or a date-time."""

    model_config = ConfigDict(extra="forbid")

    taken_at: date | datetime

    def as_datetime(self) -> datetime:
        value = self.taken_at
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        # Noon keeps the calendar date the same in every time zone from UTC-11 to UTC+11.
        return datetime.combine(value, time(12, 0), tzinfo=UTC)
