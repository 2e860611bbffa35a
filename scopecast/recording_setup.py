"""Recording wired together: the streaming side's consent checker and catalogue, answered by telehealth's consent
records and recordings table, and telehealth's consult recorder, answered by the live recordings.

Neither side imports the other; this module translates their types and errors.
"""

from __future__ import annotations

import asyncio

from stream.recording.contracts import (
    ConsentDecision,
    RecordingOutcome,
    RecordingRefused,
    RecordingRequest,
    RecordingTarget,
)
from stream.recording.live import ROOM_KEY, LiveRecordings, RecordingStatus
from stream.recording.recovery import recover_file
from telehealth.errors import TelehealthError
from telehealth.recording_api import LiveRecordingState, RecordingStartRefused
from telehealth.recording_files import RecordingFiles
from telehealth.recording_records import RecordingSource
from telehealth.records import Actor, Role
from telehealth.store.cases import CaseStore
from telehealth.store.recording_consents import consent_to_record
from telehealth.store.recordings import RecordingEnd, close_recording, open_recording, unfinished_recordings


def _actor(request: RecordingRequest) -> Actor:
    try:
        role = Role(request.role)
    except ValueError:
        raise RecordingRefused(f"role {request.role} may not record", 403) from None
    return Actor(request.user_id, role)


class TelehealthConsent:
    """ConsentChecker over telehealth's consent records."""

    def __init__(self, store: CaseStore) -> None:
        self._store = store

    async def __call__(self, request: RecordingRequest) -> ConsentDecision:
        actor = _actor(request)
        try:
            consent = await asyncio.to_thread(
                consent_to_record, self._store, actor, request.case_id, RecordingSource(request.source)
            )
        except TelehealthError as exc:
            return ConsentDecision(False, exc.reason)
        return ConsentDecision(True, "", consent.id, consent.patient_video, consent.patient_audio)


class TelehealthCatalogue:
    """RecordingCatalogue over telehealth's recordings table and folder."""

    def __init__(self, store: CaseStore, files: RecordingFiles) -> None:
        self._store = store
        self._files = files

    async def opened(self, request: RecordingRequest, decision: ConsentDecision, has_audio: bool) -> RecordingTarget:
        try:
            record = await asyncio.to_thread(
                open_recording,
                self._store,
                self._files,
                _actor(request),
                request.case_id,
                RecordingSource(request.source),
                has_audio,
            )
        except TelehealthError as exc:
            raise RecordingRefused(exc.reason, exc.status_code) from None
        return RecordingTarget(record.id, self._files.path(record.video_file), self._files.path(record.findings_file))

    async def closed(self, outcome: RecordingOutcome) -> None:
        end = RecordingEnd(
            outcome.frames, outcome.duration_s, outcome.size_bytes, outcome.end_reason, outcome.stopped_by
        )
        await asyncio.to_thread(close_recording, self._store, outcome.recording_id, end)


class ConsultRecorder:
    """telehealth's LiveRecorder over the live recordings."""

    def __init__(self, recordings: LiveRecordings) -> None:
        self._recordings = recordings

    async def start_consult(self, room_id: str, case_id: int, actor: Actor) -> LiveRecordingState:
        try:
            status = await self._recordings.start_consult(room_id, case_id, actor.user_id, actor.role.value)
        except RecordingRefused as exc:
            raise _refusal(exc) from None
        return _state(status)

    async def stop_consult(self, room_id: str, actor: Actor) -> LiveRecordingState:
        try:
            status = await self._recordings.stop(f"{ROOM_KEY}{room_id}", actor.user_id)
        except RecordingRefused as exc:
            raise _refusal(exc) from None
        return _state(status)


def _refusal(exc: RecordingRefused) -> TelehealthError:
    return RecordingStartRefused(exc.message, exc.status)


def _state(status: RecordingStatus) -> LiveRecordingState:
    return LiveRecordingState(status.recording_id, status.state, status.has_audio, status.frames, status.reason)


INTERRUPTED = "the server stopped during the recording; kept up to the last whole second"


def close_interrupted_recordings(store: CaseStore, files: RecordingFiles) -> list[int]:
    """At start-up, before any recording can start: close what the last run left open (killed, power lost), its file
    cut back to its last whole fragment so it plays. Blocking; returns the ids closed."""
    closed = []
    for record in unfinished_recordings(store):
        kept = recover_file(files.path(record.video_file))
        close_recording(
            store, record.id, RecordingEnd(kept.frames, kept.duration_s, kept.size_bytes, INTERRUPTED, None)
        )
        closed.append(record.id)
    return closed
