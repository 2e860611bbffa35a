"""The direct recorder on a live hub: the annotated video to a playable MP4 with its findings track aligned, only with
consent, one recording per stream, a full disk closing cleanly without touching other streams, and a consult
recording that carries the patient's sound only when they consented to it."""

from __future__ import annotations

import asyncio
import json

import av
import pytest

from stream.events import RecordingEvent, parse_server_event
from stream.hub import StreamEntry, StreamHub
from stream.metrics import StreamMetrics
from stream.pipeline import PipelineConfig
from stream.recording.contracts import ConsentDecision, RecordingRefused
from stream.recording.findings_track import read_findings_track
from stream.recording.live import LiveRecordings, direct_recorders
from stream.recording.mp4_boxes import complete_prefix
from stream.rooms import ConsultRooms, RoomGrant
from tests.helpers.fakes import BoxModel
from tests.helpers.recording_fakes import (
    ConsentBook,
    FolderCatalogue,
    PacedCamera,
    PacedMicrophone,
    QuietMember,
    filling_disk_opener,
)

FRAME_S = 1 / 30
CONSENTED = ConsentDecision(True, consent_id=7, patient_video=True, patient_audio=False)


def make_hub() -> StreamHub:
    return StreamHub(lambda _name: lambda: BoxModel(), "box", PipelineConfig(register_wait_ms=0), StreamMetrics())


def decoded(path) -> tuple[list[float], av.container.InputContainer]:  # type: ignore[name-defined]
    container = av.open(str(path))
    stream = container.streams.video[0]
    times = [float(f.pts * f.time_base) for f in container.decode(stream)]
    return times, container


def one_camera_recorded(
    tmp_path, cases: dict[int, ConsentDecision]
) -> tuple[StreamHub, ConsentBook, FolderCatalogue, LiveRecordings, StreamEntry]:
    """A hub with one paced camera ("scope") and recordings into `tmp_path` under the consent of `cases`."""
    hub = make_hub()
    consent = ConsentBook(cases)
    catalogue = FolderCatalogue(tmp_path, consent)
    return (
        hub,
        consent,
        catalogue,
        LiveRecordings(hub, None, consent, catalogue),
        hub.add_camera_stream(PacedCamera(), "scope"),
    )


async def test_recording_is_playable_and_findings_line_up_with_frames(tmp_path) -> None:
    hub, consent, catalogue, recordings, entry = one_camera_recorded(tmp_path, {12: CONSENTED})
    events: list[str] = []
    entry.pipeline.add_listener(events.append)
    try:
        await asyncio.sleep(0.3)
        status = await recordings.start_stream(entry.stream_id, 12, user_id=3, role="surgeon")
        assert status.state == "recording" and status.case_id == 12 and not status.has_audio
        with pytest.raises(RecordingRefused, match="already recording"):
            await recordings.start_stream(entry.stream_id, 12, user_id=3, role="surgeon")
        # A viewer beside the recorder gets the same frame objects; its timestamps stay the stream's own.
        viewer = hub.subscribe(entry.stream_id)
        seen = []
        deadline = asyncio.get_running_loop().time() + 2.5
        while asyncio.get_running_loop().time() < deadline:
            frame = await viewer.recv()
            seen.append(float(frame.pts * frame.time_base))
        hub.unsubscribe(entry.stream_id, viewer)
        final = await recordings.stop(entry.stream_id, user_id=3)
    finally:
        await hub.close()
    assert seen == sorted(seen) and seen[0] > 0.25  # counted from the stream's first frame, not the recording's

    assert final.state == "stopped" and final.reason == ""
    outcome = catalogue.outcomes[0]
    assert outcome.stopped_by == 3 and outcome.end_reason is None and not outcome.failed
    times, container = decoded(tmp_path / "rec-1.mp4")
    assert not container.streams.audio
    # 2.5 s at 30 fps, less what a busy two-core box drops (the relay keeps only the newest frame for a slow reader).
    assert 30 <= len(times) == outcome.frames <= 80
    assert times == sorted(times) and times[0] == 0.0
    assert 2.0 <= times[-1] <= 3.0 and abs(times[-1] - outcome.duration_s) < 0.05
    assert outcome.size_bytes == (tmp_path / "rec-1.mp4").stat().st_size

    lines = read_findings_track((tmp_path / "rec-1.jsonl").read_bytes())
    assert len(lines) >= 5
    on_a_frame = 0
    for line in lines:
        assert line.event.stream_id == entry.stream_id and line.event.objects[0].label == "thing"
        assert times[0] <= line.t <= times[-1], f"findings at {line.t:.3f} s lie outside the video"
        nearest = min(abs(t - line.t) for t in times)
        on_a_frame += nearest < 0.001
        # Findings of a frame the recording skipped (the relay keeps only the newest for a slow reader) sit between
        # two recorded frames: still within a frame time of the nearer on a box that keeps up.
        assert nearest <= 2 * FRAME_S, f"findings at {line.t:.3f} s are {nearest * 1000:.0f} ms from any frame"
    assert on_a_frame >= 0.8 * len(lines), f"only {on_a_frame} of {len(lines)} findings lines are on a recorded frame"
    # The viewers saw the recording light go on and off.
    states = [e.state for e in map(parse_server_event, events) if isinstance(e, RecordingEvent)]
    assert states == ["recording", "stopped"]


async def test_no_consent_no_recording(tmp_path) -> None:
    hub, consent, catalogue, recordings, entry = one_camera_recorded(tmp_path, {})
    try:
        with pytest.raises(RecordingRefused) as refused:
            await recordings.start_stream(entry.stream_id, 12, user_id=3, role="surgeon")
        assert refused.value.status == 403 and refused.value.message == "no recording consent on case 12"
        assert catalogue.opened_requests == [] and list(tmp_path.iterdir()) == []
        assert recordings.status(entry.stream_id) is None
    finally:
        await hub.close()


async def test_withdrawn_consent_stops_the_recording(tmp_path) -> None:
    hub, consent, catalogue, recordings, entry = one_camera_recorded(tmp_path, {12: CONSENTED})
    try:
        await asyncio.sleep(0.2)
        await recordings.start_stream(entry.stream_id, 12, user_id=3, role="surgeon")
        await asyncio.sleep(1.2)
        del consent.cases[12]
        [ended] = await recordings.consent_withdrawn(12)
        assert ended.state == "stopped" and ended.reason == "recording consent on case 12 was withdrawn"
        with pytest.raises(RecordingRefused, match="no recording consent on case 12"):
            await recordings.start_stream(entry.stream_id, 12, user_id=3, role="surgeon")
    finally:
        await hub.close()
    times, _ = decoded(tmp_path / "rec-1.mp4")
    assert len(times) >= 10


async def test_a_stream_that_ends_closes_its_recording(tmp_path) -> None:
    hub, consent, catalogue, recordings, entry = one_camera_recorded(tmp_path, {12: CONSENTED})
    try:
        await asyncio.sleep(0.2)
        await recordings.start_stream(entry.stream_id, 12, user_id=3, role="surgeon")
        await asyncio.sleep(1.0)
        await hub.remove_stream(entry.stream_id)  # the publisher hung up
        for _ in range(50):
            status = recordings.status(entry.stream_id)
            if status is not None and status.state != "recording":
                break
            await asyncio.sleep(0.1)
    finally:
        await hub.close()
    assert status is not None and status.state == "stopped" and status.reason == "the stream ended"
    [outcome] = catalogue.outcomes
    assert outcome.end_reason == "the stream ended" and not outcome.failed and outcome.stopped_by is None
    times, _ = decoded(tmp_path / "rec-1.mp4")
    assert len(times) == outcome.frames >= 10


async def test_full_disk_closes_cleanly_and_other_streams_keep_recording(tmp_path) -> None:
    hub = make_hub()
    consent = ConsentBook({12: CONSENTED, 13: CONSENTED})
    catalogue = FolderCatalogue(tmp_path, consent)
    # Room for some seconds of video on the first recording's disk; the second has room to spare. Chosen by file
    # name, not by which opens first: each recorder opens its video on its own first frame, in either order.
    small, large = filling_disk_opener(60_000), filling_disk_opener(1 << 30)

    def opener(path):
        return (small if path.name == "rec-1.mp4" else large)(path)

    recordings = LiveRecordings(hub, None, consent, catalogue, direct_recorders(hub, opener))
    first = hub.add_camera_stream(PacedCamera(), "theatre 1")
    second = hub.add_camera_stream(PacedCamera(), "theatre 2")
    events: list[str] = []
    first.pipeline.add_listener(events.append)
    try:
        await asyncio.sleep(0.2)
        await recordings.start_stream(first.stream_id, 12, user_id=3, role="surgeon")
        await recordings.start_stream(second.stream_id, 13, user_id=3, role="surgeon")
        for _ in range(400):  # the first disk fills after some seconds of video; a loaded machine takes longer
            await asyncio.sleep(0.1)
            if recordings.status(first.stream_id).state != "recording":  # type: ignore[union-attr]
                break
        failed = recordings.status(first.stream_id)
        assert failed is not None and failed.state == "failed"
        assert failed.reason.startswith("disk full: No space left on device")
        # The other stream records on, and both streams still serve their viewers.
        still = recordings.status(second.stream_id)
        assert still is not None and still.state == "recording"
        frames_then = still.frames
        await asyncio.sleep(0.6)
        assert recordings.status(second.stream_id).frames > frames_then  # type: ignore[union-attr]
        assert first.pipeline.latest_result is not None
        second_final = await recordings.stop(second.stream_id, user_id=3)
        assert second_final.state == "stopped"
    finally:
        await hub.close()

    broken = tmp_path / "rec-1.mp4"
    outcome = next(o for o in catalogue.outcomes if o.recording_id == 1)
    assert outcome.failed and outcome.size_bytes == broken.stat().st_size <= 60_000
    assert complete_prefix(broken) == broken.stat().st_size  # the torn tail was cut off
    times, _ = decoded(broken)  # decodes to the end without an error
    assert len(times) >= 5
    assert times[-1] <= outcome.duration_s + FRAME_S
    failed_event = [e for e in map(parse_server_event, events) if isinstance(e, RecordingEvent)][-1]
    assert failed_event.state == "failed" and "disk full" in failed_event.reason
    assert json.loads((tmp_path / "rec-2.jsonl").read_text().splitlines()[0])["event"]["type"] == "findings"


@pytest.mark.parametrize("audio_consented", [False, True])
async def test_consult_recording_carries_patient_sound_only_with_consent(tmp_path, audio_consented) -> None:
    hub = make_hub()
    rooms = ConsultRooms(hub, StreamMetrics(), "box", lambda room, _cred: _granted(room))
    consent = ConsentBook({5: ConsentDecision(True, consent_id=1, patient_video=True, patient_audio=audio_consented)})
    catalogue = FolderCatalogue(tmp_path, consent)
    recordings = LiveRecordings(hub, rooms, consent, catalogue)
    microphone = PacedMicrophone()
    try:
        grant = RoomGrant("room-a", "patient")
        patient = QuietMember()
        await rooms.take_seat(grant, patient, PacedCamera(), microphone)
        await asyncio.sleep(0.3)
        status = await recordings.start_consult("room-a", 5, user_id=2, role="gp")
        assert status.has_audio is audio_consented
        assert catalogue.opened_requests[0][0].source == "consult"
        await asyncio.sleep(2.0)
        await recordings.stop("room:room-a", user_id=2)
    finally:
        await rooms.close()
        await hub.close()
        microphone.stop()
    # The patient is told the call is recorded, and when it stops.
    told = [e.state for e in map(parse_server_event, patient.events) if isinstance(e, RecordingEvent)]
    assert told == ["recording", "stopped"]
    container = av.open(str(tmp_path / "rec-1.mp4"))
    assert len(container.streams.video) == 1
    if audio_consented:
        [audio] = container.streams.audio
        samples = sum(f.samples for f in container.decode(audio))
        assert samples >= 48_000  # at least a second of the patient's sound
    else:
        assert not container.streams.audio


async def test_consult_without_video_consent_is_refused(tmp_path) -> None:
    hub = make_hub()
    rooms = ConsultRooms(hub, StreamMetrics(), "box", lambda room, _cred: _granted(room))
    consent = ConsentBook({5: ConsentDecision(True, consent_id=1, patient_video=False, patient_audio=True)})
    recordings = LiveRecordings(hub, rooms, consent, FolderCatalogue(tmp_path, consent))
    try:
        await rooms.take_seat(RoomGrant("room-a", "patient"), QuietMember(), PacedCamera())
        with pytest.raises(RecordingRefused, match="does not cover the patient's video"):
            await recordings.start_consult("room-a", 5, user_id=2, role="gp")
        with pytest.raises(RecordingRefused, match="patient is not connected"):
            await recordings.start_consult("room-b", 5, user_id=2, role="gp")
    finally:
        await rooms.close()
        await hub.close()


async def _granted(room: str) -> RoomGrant:
    return RoomGrant(room, "patient")
