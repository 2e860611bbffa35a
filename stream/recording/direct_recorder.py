"""The direct path's recorder: reads the stream's annotated video like one more viewer (through the hub's relay,
newest frame only, so a slow disk drops frames instead of delaying anyone) and writes MP4 + findings track on its
own thread."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, cast

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from stream.events import FindingsEvent, parse_server_event
from stream.media_clock import AUDIO_CLOCK_HZ, VIDEO_CLOCK_HZ, VIDEO_TIME_BASE
from stream.pipeline import StreamPipeline
from stream.recording.contracts import RecordingOutcome, RecordingTarget
from stream.recording.findings_track import FindingsTrackWriter, findings_line
from stream.recording.mp4_boxes import truncate_to_complete
from stream.recording.mp4_writer import Mp4Writer, VideoFormat
from stream.room_audio import AudioTap

log = logging.getLogger(__name__)

SinkOpener = Callable[[Path], BinaryIO]
# Writes waiting for the writer thread (audio frames, findings lines) before new ones are dropped: a stalled disk
# must not grow memory.
MAX_PENDING_WRITES = 200
MAX_HELD_FINDINGS = 64
STALE_FIRST_FRAME_S = 0.2


def open_new_file(path: Path) -> BinaryIO:
    """A new file (never overwrite one), readable by its owner only: recordings are patient data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return cast(BinaryIO, open(path, "xb", opener=_open_private))


def _open_private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"disk full: {exc.strerror or 'no space left on device'}; the recording was closed"
    if isinstance(exc, OSError):
        return f"write failed: {exc.strerror or exc}; the recording was closed"
    return f"recording failed: {type(exc).__name__}: {exc}"[:200]


class DirectRecorder:
    """Records `video` (a relay subscription to the annotated track) with `pipeline`'s findings, and the patient's
    sound from `audio` when given. Call start(), then stop() or await finished()."""

    def __init__(
        self,
        target: RecordingTarget,
        video: MediaStreamTrack,
        pipeline: StreamPipeline,
        audio: AudioTap | None = None,
        *,
        opener: SinkOpener = open_new_file,
        keyframe_interval_s: float = 1.0,
        release: Callable[[], None] | None = None,
    ) -> None:
        """`release` gives the relay subscription back once recording ends."""
        self._target = target
        self._video = video
        self._pipeline = pipeline
        self._audio = audio
        self._opener = opener
        self._keyframe_interval_s = keyframe_interval_s
        self._release = release
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"record:{target.recording_id}")
        self._writer: Mp4Writer | None = None
        self._findings: FindingsTrackWriter | None = None
        self._base_pts: int | None = None  # the first recorded frame's pts on the stream's clock
        self._last_pts = 0
        self._frames = 0
        self._pending = 0
        self._failure: str | None = None
        self._stop_reason: str | None = None
        self._stopped_by: int | None = None
        self._stopping = asyncio.Event()
        self._started_at = time.monotonic()
        self._task: asyncio.Task[RecordingOutcome] | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        # Findings whose frame is not recorded yet, oldest first (bounded: the model runs no faster than the video).
        self._held_findings: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=MAX_HELD_FINDINGS)

    @property
    def frames(self) -> int:
        return self._frames

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"record:{self._target.recording_id}")

    async def stop(self, stopped_by: int | None, reason: str | None = None) -> RecordingOutcome:
        """Stop and close the files; `reason` (e.g. consent withdrawn) marks an early end."""
        if not self._stopping.is_set():
            self._stopped_by = stopped_by
            self._stop_reason = reason
            self._stopping.set()
        return await self.finished()

    async def finished(self) -> RecordingOutcome:
        assert self._task is not None, "start() first"
        return await asyncio.shield(self._task)

    # -- the loop ------------------------------------------------------------------------------------------

    async def _run(self) -> RecordingOutcome:
        loop = asyncio.get_running_loop()
        end_reason: str | None = None
        try:
            self._findings = FindingsTrackWriter(
                await loop.run_in_executor(self._executor, self._opener, self._target.findings_path)
            )
            self._unsubscribe.append(self._pipeline.add_listener(self._on_event))
            while not self._stopping.is_set() and self._failure is None:
                frame = await self._next_frame()
                if frame is None:
                    if not self._stopping.is_set():
                        end_reason = "the stream ended"
                    break
                await self._write_frame(frame)
        except Exception as exc:  # the disk, the encoder: stop this recording only
            self._failure = failure_reason(exc)
            log.warning("recording failed", extra={"recording": self._target.recording_id, "error": self._failure})
        finally:
            for unsubscribe in self._unsubscribe:
                unsubscribe()
            if self._release is not None:
                self._release()
        size = await loop.run_in_executor(self._executor, self._close_files)
        self._executor.shutdown(wait=False)
        reason = self._failure or self._stop_reason or end_reason
        return RecordingOutcome(
            self._target.recording_id,
            self._frames,
            round(self._last_pts / VIDEO_CLOCK_HZ, 3),
            size,
            reason,
            self._stopped_by,
            failed=self._failure is not None,
        )

    async def _next_frame(self) -> av.VideoFrame | None:
        receive = asyncio.ensure_future(self._video.recv())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if receive not in done:
            receive.cancel()
            with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                await receive
            return None
        try:
            return cast(av.VideoFrame, receive.result())
        except MediaStreamError:
            return None

    async def _write_frame(self, frame: av.VideoFrame) -> None:
        loop = asyncio.get_running_loop()
        stream_pts = self._stream_pts(frame)
        if self._base_pts is None:
            # A stream nobody watched hands out the last frame it decoded, however old, when the first reader comes:
            # that moment is not part of this recording.
            if self._pipeline.clock_origin + stream_pts / VIDEO_CLOCK_HZ < self._started_at - STALE_FIRST_FRAME_S:
                return
            self._base_pts = stream_pts
            video = VideoFormat(frame.width, frame.height, keyframe_interval_s=self._keyframe_interval_s)
            self._writer = await loop.run_in_executor(self._executor, self._open_video, video)
            if self._audio is not None:
                self._unsubscribe.append(self._audio.add_listener(self._on_audio))
        pts = stream_pts - self._base_pts
        writer = self._writer
        assert writer is not None
        if await loop.run_in_executor(self._executor, writer.write_video, frame, pts):
            self._frames += 1
            self._last_pts = pts
            self._release_findings(pts)

    def _release_findings(self, up_to_pts: int) -> None:
        """Write the findings of frames up to the one just recorded; later ones wait for their frame, so the track
        never runs past the video."""
        while self._held_findings and self._held_findings[0][0] <= up_to_pts:
            _pts, line = self._held_findings.popleft()
            self._submit(self._write_findings, line)

    def _stream_pts(self, frame: av.VideoFrame) -> int:
        """The frame's time on the stream's clock (90 kHz from its first frame), as the annotated track stamped it."""
        arrival = frame.opaque
        if isinstance(arrival, float):
            return int((arrival - self._pipeline.clock_origin) * VIDEO_CLOCK_HZ)
        return int(Fraction(frame.pts or 0) * (frame.time_base or VIDEO_TIME_BASE) * VIDEO_CLOCK_HZ)

    def _open_video(self, video: VideoFormat) -> Mp4Writer:
        return Mp4Writer(self._opener(self._target.video_path), video, with_audio=self._audio is not None)

    # -- side tracks (called on the event loop; the writes go to the writer thread) -----------------------

    def _on_event(self, message: str) -> None:
        if self._base_pts is None or '"findings"' not in message:
            return
        event = parse_server_event(message)
        if not isinstance(event, FindingsEvent):
            return
        result = self._pipeline.recent_result(event.frame_seq)
        if result is None:
            return
        # The same expression the annotated track stamps its frames with: the line's pts is its frame's pts.
        stream_pts = int((result.source.arrival - self._pipeline.clock_origin) * VIDEO_CLOCK_HZ)
        pts = stream_pts - self._base_pts
        if pts < 0:
            return
        self._held_findings.append((pts, findings_line(event, pts)))
        if pts <= self._last_pts:
            self._release_findings(self._last_pts)

    def _on_audio(self, frame: av.AudioFrame) -> None:
        if self._base_pts is None:
            return
        started = self._pipeline.clock_origin + self._base_pts / VIDEO_CLOCK_HZ
        start_pts = int((time.monotonic() - started) * AUDIO_CLOCK_HZ)
        self._submit(self._write_audio, frame, start_pts)

    def _submit(self, write: Callable[..., None], *args: object) -> None:
        if self._failure is not None or self._stopping.is_set() or self._pending >= MAX_PENDING_WRITES:
            return
        self._pending += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, write, *args)
        future.add_done_callback(self._written)

    def _written(self, future: asyncio.Future[None]) -> None:
        self._pending -= 1
        exc = future.exception()
        if exc is not None and self._failure is None:
            self._failure = failure_reason(exc)
            log.warning("recording failed", extra={"recording": self._target.recording_id, "error": self._failure})
            self._stopping.set()

    def _write_findings(self, line: bytes) -> None:
        if self._findings is not None and self._failure is None:
            self._findings.write(line)

    def _write_audio(self, frame: av.AudioFrame, start_pts: int) -> None:
        if self._writer is not None and self._failure is None:
            self._writer.write_audio(frame, start_pts)

    # -- closing (writer thread) --------------------------------------------------------------------------

    def _close_files(self) -> int:
        """Finish both files; after a failure keep only the video's whole fragments. Returns the video's size."""
        if self._writer is not None:
            if self._failure is None:
                try:
                    self._writer.close()
                except Exception as exc:
                    self._failure = failure_reason(exc)
            else:
                self._writer.abandon()
        if self._findings is not None:
            with contextlib.suppress(OSError):
                self._findings.close()
        path = self._target.video_path
        if not path.exists():
            return 0
        if self._failure is not None:
            return truncate_to_complete(path)
        return path.stat().st_size
