"""The recordings in progress on this server: one per stream (or consult room) at a time, started only with the
case's consent, each on its own recorder so one that fails or stalls leaves the others alone."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from stream.events import RecordingEvent
from stream.hub import StreamEntry, StreamHub
from stream.recording.contracts import (
    ConsentChecker,
    ConsentDecision,
    Recorder,
    RecordingCatalogue,
    RecordingOutcome,
    RecordingRefused,
    RecordingRequest,
    RecordingTarget,
)
from stream.recording.direct_recorder import DirectRecorder, SinkOpener, open_new_file
from stream.room_audio import AudioTap
from stream.rooms import ConsultRooms

log = logging.getLogger(__name__)

# (target, the stream to record, the patient's microphone when consented) -> a recorder not yet started.
RecorderFactory = Callable[[RecordingTarget, StreamEntry, AudioTap | None], Recorder]
_KEPT_ENDED = 256
ROOM_KEY = "room:"  # a consult's recording is kept under "room:<room id>", apart from stream ids  # the last status of ended recordings, for the status route


def direct_recorders(hub: StreamHub, opener: SinkOpener = open_new_file) -> RecorderFactory:
    """Recorders on the direct path: each reads the annotated stream through the hub's relay like a viewer."""

    def make(target: RecordingTarget, entry: StreamEntry, audio: AudioTap | None) -> Recorder:
        track = hub.subscribe_entry(entry)
        return DirectRecorder(
            target, track, entry.pipeline, audio, opener=opener, release=lambda: hub.unsubscribe(entry.stream_id, track)
        )

    return make


@dataclass(frozen=True)
class RecordingStatus:
    key: str  # the stream id, or ROOM_KEY + room id for a consult
    stream_id: str
    recording_id: int
    case_id: int
    state: Literal["recording", "stopped", "failed"]
    started_at: float  # unix time
    has_audio: bool
    frames: int = 0
    duration_s: float = 0.0
    reason: str = ""


@dataclass
class _Active:
    status: RecordingStatus
    recorder: Recorder
    entry: StreamEntry
    watcher: asyncio.Task[RecordingStatus] | None = None


class LiveRecordings:
    def __init__(
        self,
        hub: StreamHub,
        rooms: ConsultRooms | None,
        consent: ConsentChecker,
        catalogue: RecordingCatalogue,
        make_recorder: RecorderFactory | None = None,
    ) -> None:
        self._hub = hub
        self._rooms = rooms
        self._consent = consent
        self._catalogue = catalogue
        self._make = make_recorder if make_recorder is not None else direct_recorders(hub)
        self._active: dict[str, _Active] = {}
        self._ended: collections.OrderedDict[str, RecordingStatus] = collections.OrderedDict()
        self._lock = asyncio.Lock()  # one start at a time: two presses of "record" make one recording

    # -- starting ------------------------------------------------------------------------------------------

    async def start_stream(self, stream_id: str, case_id: int, user_id: int, role: str) -> RecordingStatus:
        """Record a public stream's annotated video for `case_id`. UnknownStream, or RecordingRefused (no consent,
        already recording)."""
        entry = self._hub.get(stream_id)
        request = RecordingRequest(case_id, user_id, role, "stream", stream_id)
        return await self._start(stream_id, entry, request, None)

    async def start_consult(self, room_id: str, case_id: int, user_id: int, role: str) -> RecordingStatus:
        """Record a consult: the patient's video as the clinician sees it, and their sound only if consented."""
        if self._rooms is None:
            raise RecordingRefused("consult rooms are not enabled on this server")
        entry, microphone = self._rooms.patient_media(room_id)
        if entry is None:
            raise RecordingRefused("the patient is not connected: start recording once their video arrives")
        request = RecordingRequest(case_id, user_id, role, "consult", entry.stream_id)
        return await self._start(f"{ROOM_KEY}{room_id}", entry, request, microphone)

    async def _start(
        self, key: str, entry: StreamEntry, request: RecordingRequest, microphone: AudioTap | None
    ) -> RecordingStatus:
        async with self._lock:
            running = self._active.get(key)
            if running is not None:
                s = running.status
                raise RecordingRefused(
                    f"{_what(key)} is already recording (recording {s.recording_id}, case {s.case_id}); stop it first"
                )
            decision = await self._consent(request)
            if not decision.allowed:
                raise RecordingRefused(decision.reason, 403)
            audio = _consented_audio(request, decision, microphone)
            target = await self._catalogue.opened(request, decision, audio is not None)
            recorder = self._make(target, entry, audio)
            recorder.start()
            status = RecordingStatus(
                key, entry.stream_id, target.recording_id, request.case_id, "recording", time.time(), audio is not None
            )
            active = _Active(status, recorder, entry)
            self._active[key] = active
            self._ended.pop(key, None)
            active.watcher = asyncio.create_task(self._follow(key, active), name=f"recording:{key}")
        log.info("recording started", extra={"stream": entry.stream_id, "recording": target.recording_id})
        self._announce(entry, status)
        return status

    # -- stopping ------------------------------------------------------------------------------------------

    async def stop(self, key: str, user_id: int | None, reason: str | None = None) -> RecordingStatus:
        """Stop the recording of `key` and close its files; RecordingRefused when it is not recording."""
        active = self._active.get(key)
        if active is None:
            raise RecordingRefused(f"{_what(key)} is not recording")
        await active.recorder.stop(user_id, reason)
        assert active.watcher is not None
        return await asyncio.shield(active.watcher)

    async def consent_withdrawn(self, case_id: int) -> list[RecordingStatus]:
        """Stop every recording of `case_id` (its consent was just withdrawn)."""
        keys = [k for k, a in self._active.items() if a.status.case_id == case_id]
        reason = f"recording consent on case {case_id} was withdrawn"
        return [await self.stop(k, None, reason) for k in keys if k in self._active]

    async def _follow(self, key: str, active: _Active) -> RecordingStatus:
        outcome = await active.recorder.finished()
        final = _ended_status(active.status, outcome)
        self._active.pop(key, None)
        self._ended[key] = final
        while len(self._ended) > _KEPT_ENDED:
            self._ended.popitem(last=False)
        try:
            await self._catalogue.closed(outcome)
        except Exception:  # the files are closed either way; the log says the catalogue missed it
            log.exception("recording catalogue update failed", extra={"recording": outcome.recording_id})
        log.info(
            "recording ended",
            extra={"recording": outcome.recording_id, "frames": outcome.frames, "reason": outcome.end_reason},
        )
        self._announce(active.entry, final)
        return final

    # -- status ----------------------------------------------------------------------------------------------

    def status(self, key: str) -> RecordingStatus | None:
        active = self._active.get(key)
        if active is not None:
            return replace(active.status, frames=active.recorder.frames)
        return self._ended.get(key)

    def recording(self) -> list[RecordingStatus]:
        return [replace(a.status, frames=a.recorder.frames) for a in self._active.values()]

    async def close(self) -> None:
        """Stop everything (server shutdown): each file is finished cleanly."""
        for key in list(self._active):
            try:
                await self.stop(key, None, "the server stopped")
            except RecordingRefused:
                pass

    def _announce(self, entry: StreamEntry, status: RecordingStatus) -> None:
        event = RecordingEvent(
            stream_id=status.stream_id,
            state=status.state,
            recording_id=status.recording_id,
            case_id=status.case_id,
            reason=status.reason,
            time=time.time(),
        )
        if status.key.startswith(ROOM_KEY) and self._rooms is not None:
            self._rooms.tell_room(status.key.removeprefix(ROOM_KEY), event.model_dump_json())
        else:
            entry.pipeline.announce(event.model_dump_json())


def _consented_audio(
    request: RecordingRequest, decision: ConsentDecision, microphone: AudioTap | None
) -> AudioTap | None:
    """A stream recording is the annotated video alone; a consult's needs the patient's consent for each part."""
    if request.source != "consult":
        return None
    if not decision.patient_video:
        raise RecordingRefused(
            f"the recording consent on case {request.case_id} does not cover the patient's video", 403
        )
    return microphone if decision.patient_audio else None


def _ended_status(status: RecordingStatus, outcome: RecordingOutcome) -> RecordingStatus:
    return replace(
        status,
        state="failed" if outcome.failed else "stopped",
        frames=outcome.frames,
        duration_s=outcome.duration_s,
        reason=outcome.end_reason or "",
    )


def _what(key: str) -> str:
    return f"consult room {key.removeprefix(ROOM_KEY)}" if key.startswith(ROOM_KEY) else f"stream {key!r}"
