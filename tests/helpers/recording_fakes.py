"""Sources and sinks for recording tests: a paced synthetic camera and microphone, and a file that fills up.

The full path (telehealth consent and catalogue, a real server) is in tests/scopecast/test_recording_journey.py; these
let the stream-side tests choose consent and break the disk on purpose."""

from __future__ import annotations

import asyncio
import errno
import fractions
import io
import time
from pathlib import Path
from typing import BinaryIO, cast

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from stream.recording.contracts import (
    ConsentDecision,
    RecordingOutcome,
    RecordingRefused,
    RecordingRequest,
    RecordingTarget,
)


class PacedCamera(MediaStreamTrack):
    """`fps` frames a second of moving blocks (so H.264 has real work), for `frames` frames, then the end."""

    kind = "video"

    def __init__(self, fps: int = 30, frames: int = 10_000, size: tuple[int, int] = (320, 240)) -> None:
        super().__init__()
        self._fps = fps
        self._left = frames
        self._size = size
        self._n = 0
        self._next = time.monotonic()

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live" or self._left <= 0:
            self.stop()
            raise MediaStreamError
        self._next += 1 / self._fps
        await asyncio.sleep(max(0.0, self._next - time.monotonic()))
        w, h = self._size
        image = np.full((h, w, 3), 40, np.uint8)
        x = (self._n * 7) % (w - 40)
        image[60:100, x : x + 40] = (200, 120, 60)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = self._n * 3000
        frame.time_base = fractions.Fraction(1, 90_000)
        self._n += 1
        self._left -= 1
        return frame


class PacedMicrophone(MediaStreamTrack):
    """20 ms frames of a 440 Hz tone at 48 kHz stereo s16, as aiortc's Opus decoder hands them out."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0
        self._next = time.monotonic()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._next += 0.02
        await asyncio.sleep(max(0.0, self._next - time.monotonic()))
        t = (np.arange(960) + self._samples) / 48_000
        tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48_000
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, 48_000)
        self._samples += 960
        return frame


class FillingDisk(io.RawIOBase):
    """A file on a disk with `room` bytes free: the write that does not fit fails with ENOSPC, as write(2) does,
    after writing what fits (a short write), so the file's tail is torn like a real one."""

    def __init__(self, path: Path, room: int) -> None:
        self._file = open(path, "xb")  # noqa: SIM115 (closed by close())
        self._room = room

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        view = memoryview(data)
        if len(view) > self._room:
            self._file.write(view[: self._room])
            self._file.flush()
            self._room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(view)
        return self._file.write(view)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        super().close()


def filling_disk_opener(room_for_video: int):  # -> SinkOpener
    """Video files get `room_for_video` bytes before the disk is full; findings tracks are written normally."""

    def opener(path: Path) -> BinaryIO:
        if path.suffix == ".mp4":
            return cast(BinaryIO, FillingDisk(path, room_for_video))
        return open(path, "xb")  # noqa: SIM115

    return opener


class ConsentBook:
    """Consent per case, for the stream-side tests: cases listed in `cases` consented with the given cover."""

    def __init__(self, cases: dict[int, ConsentDecision]) -> None:
        self.cases = cases
        self.asked: list[RecordingRequest] = []

    async def __call__(self, request: RecordingRequest) -> ConsentDecision:
        self.asked.append(request)
        return self.cases.get(request.case_id) or ConsentDecision(
            False, f"no recording consent on case {request.case_id}"
        )


class FolderCatalogue:
    """Keeps recordings in a folder and what happened to them in lists."""

    def __init__(self, folder: Path, consent: ConsentBook) -> None:
        self.folder = folder
        self.consent = consent
        self.opened_requests: list[tuple[RecordingRequest, bool]] = []
        self.outcomes: list[RecordingOutcome] = []

    async def opened(self, request: RecordingRequest, decision: ConsentDecision, has_audio: bool) -> RecordingTarget:
        if not (await self.consent(request)).allowed:
            raise RecordingRefused(f"no recording consent on case {request.case_id}", 403)
        self.opened_requests.append((request, has_audio))
        n = len(self.opened_requests)
        return RecordingTarget(n, self.folder / f"rec-{n}.mp4", self.folder / f"rec-{n}.jsonl")

    async def closed(self, outcome: RecordingOutcome) -> None:
        self.outcomes.append(outcome)


class QuietMember:
    """A room participant that only notes the events it is sent (for seating a synthetic patient in a room)."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def send_event(self, message: str) -> None:
        self.events.append(message)

    def peer_stream_changed(self, entry: object) -> None:
        pass

    async def close(self) -> None:
        pass
