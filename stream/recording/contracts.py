"""What the recording side exchanges with whoever keeps consent and the recordings catalogue (telehealth, wired in
by the composition root), and the interface a recorder implements (this direct PyAV recorder now, a Janus
VideoRoom recorder later)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

RecordingSourceKind = Literal["stream", "consult"]


@dataclass(frozen=True)
class RecordingRequest:
    """Someone asks to record: which case it is for, who asks, and what is recorded."""

    case_id: int
    user_id: int
    role: str
    source: RecordingSourceKind
    stream_id: str


@dataclass(frozen=True)
class ConsentDecision:
    """Whether the case's consent allows this recording, and what it covers (for consults: the patient's side)."""

    allowed: bool
    reason: str = ""  # why not, in words for the person asking ("no recording consent on case 12")
    consent_id: int | None = None
    patient_video: bool = False
    patient_audio: bool = False


class RecordingRefused(Exception):
    """A start that may not happen; `status` is the HTTP status the routes answer with."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class RecordingTarget:
    """Where the catalogue wants this recording's files."""

    recording_id: int
    video_path: Path
    findings_path: Path


@dataclass(frozen=True)
class RecordingOutcome:
    """How a recording ended; `end_reason` is None for a clean stop."""

    recording_id: int
    frames: int
    duration_s: float
    size_bytes: int
    end_reason: str | None
    stopped_by: int | None  # the user who pressed stop; None when the server ended it
    failed: bool = False  # a write or encode failed (end_reason says which); the file holds what came before


class ConsentChecker(Protocol):
    async def __call__(self, request: RecordingRequest) -> ConsentDecision: ...


class RecordingCatalogue(Protocol):
    async def opened(self, request: RecordingRequest, decision: ConsentDecision, has_audio: bool) -> RecordingTarget:
        """Register a new recording (audited); RecordingRefused when consent went away in the meantime."""
        ...

    async def closed(self, outcome: RecordingOutcome) -> None: ...


class Recorder(Protocol):
    """One recording in progress. `finished` resolves with the outcome whether it was stopped or failed."""

    @property
    def frames(self) -> int: ...

    def start(self) -> None: ...

    async def stop(self, stopped_by: int | None, reason: str | None = None) -> RecordingOutcome:
        """Stop and finish the files; `reason` marks an end nobody pressed stop for (consent withdrawn)."""
        ...

    async def finished(self) -> RecordingOutcome: ...
