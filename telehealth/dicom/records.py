"""The plain values the DICOM modules pass each other and the store hands out: kinds, outbox states, UIDs."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime


class InstanceKind(str, enum.Enum):
    """What an instance holds; each stored photo gives at most one of each."""

    photo = "photo"  # a patient's photograph: VL Photographic Image
    capture = "capture"  # a frame captured from a consult's video: Secondary Capture (digitised video)
    overlay = "overlay"  # the analysis's evidence overlay: Secondary Capture (derived, workstation)
    measurements = "measurements"  # the AI measurements: Comprehensive 3D SR, TID 1500


class OutboxState(str, enum.Enum):
    queued = "queued"  # waiting for its first attempt (or queued again by a clinician)
    sent = "sent"  # the PACS stored it
    failed = "failed"  # the last attempt failed; still queued, retried at next_attempt_at


class FailureKind(str, enum.Enum):
    """Why a send failed, in the words the status shows."""

    conflict = "conflict"  # 409: the PACS holds a different instance under this UID, or refuses it as a duplicate
    refused = "refused"  # another 4xx: the PACS refuses the request or the instance
    server_error = "server_error"  # 5xx
    unreachable = "unreachable"  # no connection (refused, no route, DNS)
    timeout = "timeout"  # connected, but no answer in time
    build_failed = "build_failed"  # the instance could not be made (photo file missing, ...)


@dataclass(frozen=True)
class InstanceUids:
    """Where one instance sits: its study (the case), series (visit and kind) and its own UID. Kept in the database,
    so a re-export or a resend gives the same UIDs."""

    study_uid: str
    series_uid: str
    series_number: int
    sop_instance_uid: str
    instance_number: int


@dataclass(frozen=True)
class OutboxItem:
    """One instance's delivery status to the PACS."""

    photo_id: int
    case_id: int
    kind: InstanceKind
    sop_instance_uid: str
    state: OutboxState
    attempts: int
    failure: FailureKind | None
    http_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None


@dataclass(frozen=True)
class SendFailure:
    """A failed attempt, classified: the outbox records it and schedules the retry."""

    kind: FailureKind
    reason: str
    http_status: int | None = None


@dataclass(frozen=True)
class DicomPatient:
    """The patient as DICOM names them. `patient_id` is never empty: an old record without an identifier gets the
    local placeholder SCOPECAST-P<id> (issuer SCOPECAST), and `note` says so."""

    patient_id: str
    issuer: str
    name: str | None
    birth_date: date | None
    note: str | None


@dataclass(frozen=True)
class DicomStudy:
    """The case as a DICOM study."""

    case_id: int
    study_uid: str
    started_at: datetime  # the case's opening: StudyDate/StudyTime
    description: str
    site: str | None  # the wound's site as the case names it (free text)


@dataclass(frozen=True)
class PhotoImage:
    """A stored photo with what its instances need: the file (a baseline JPEG), when it was taken and whether that
    time is the camera's own."""

    photo_id: int
    source_is_capture: bool
    jpeg: bytes
    width: int
    height: int
    taken_at: datetime
    received_at: datetime
    capture_time_known: bool


@dataclass(frozen=True)
class MeasuredWound:
    """The analysis that goes into the SR: the numbers (None when not measured) and the model that made them."""

    area_cm2: float | None
    length_cm: float | None
    width_cm: float | None
    model_name: str
    model_version: str
    analysed_at: datetime

    @property
    def has_numbers(self) -> bool:
        return any(v is not None for v in (self.area_cm2, self.length_cm, self.width_cm))


@dataclass(frozen=True)
class InstanceSource:
    """Everything one photo's instances are built from, read in one go from the store."""

    patient: DicomPatient
    study: DicomStudy
    image: PhotoImage
    evidence_png: bytes | None  # None: not analysed, or the evidence file is gone
    measured: MeasuredWound | None
