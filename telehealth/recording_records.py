"""What consent to record and a recording are, as the rest of telehealth and its API see them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class RecordingPurpose(str, enum.Enum):
    clinical_record = "clinical_record"
    teaching = "teaching"
    research = "research"


class RecordingSource(str, enum.Enum):
    stream = "stream"  # a theatre source or published camera (the annotated video)
    consult = "consult"  # a video consult: the patient's video as the clinician sees it


@dataclass(frozen=True)
class ConsentRecord:
    id: int
    case_id: int
    representative_name: str | None  # None: the patient consented themselves
    recorded_by: int
    consented_at: datetime
    purpose: RecordingPurpose
    patient_video: bool
    patient_audio: bool
    withdrawn_at: datetime | None
    withdrawn_by: int | None

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


@dataclass(frozen=True)
class RecordingRecord:
    id: int
    case_id: int
    consent_id: int
    started_by: int
    source: RecordingSource
    video_file: str
    findings_file: str
    has_audio: bool
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    size_bytes: int | None
    frames: int | None
    end_reason: str | None

    @property
    def state(self) -> str:
        if self.ended_at is None:
            return "recording"
        return "stopped" if self.end_reason is None else "ended_early"
