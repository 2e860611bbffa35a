"""Sound in a consult room: each side's microphone is relayed to the other, untouched, with silence in the gaps.

aiortc queues decoded audio without bound whether or not anyone reads it, so each
microphone is drained continuously into a short buffer (`AudioTap`); when the
other side is absent or slow the oldest audio is dropped, keeping the delay to
a few frames. The outgoing track (`RoomAudioTrack`) plays whichever tap is the
other side's now, and paced silence when there is none.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import cast

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from stream.media_clock import AUDIO_CLOCK_HZ, AUDIO_TIME_BASE, OPUS_FRAME_SAMPLES

# aiortc's Opus encoder fixes its resampler on the first frame it sees, so every frame sent must share one format:
# the decoder's own (packed 16-bit stereo at 48 kHz).
SAMPLE_FORMAT, LAYOUT = "s16", "stereo"
TAP_FRAMES = 10  # 200 ms of buffered audio at most


class AudioTap:
    """Reads a peer's audio track continuously, keeping the newest few frames."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.frames: asyncio.Queue[av.AudioFrame] = asyncio.Queue(maxsize=TAP_FRAMES)
        self._track = track
        # Extra readers of every frame (a consult recording): called on the event loop, they must not block.
        self._listeners: list[Callable[[av.AudioFrame], None]] = []
        self._task = asyncio.create_task(self._drain(), name="audio-tap")

    def add_listener(self, listener: Callable[[av.AudioFrame], None]) -> Callable[[], None]:
        """Also hand every frame to `listener`; returns the call that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def _drain(self) -> None:
        while True:
            try:
                # A microphone track yields audio frames; aiortc types recv() for every kind of track.
                frame = cast(av.AudioFrame, await self._track.recv())
            except MediaStreamError:
                return
            if self.frames.full():
                self.frames.get_nowait()  # drop the oldest: late audio is worse than a gap
            self.frames.put_nowait(frame)
            for listener in list(self._listeners):
                listener(frame)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class RoomAudioTrack(MediaStreamTrack):
    """The other side's microphone (through its tap), or silence; timestamps on its own sample clock."""

    kind = "audio"

    def __init__(self, peer_tap: Callable[[], AudioTap | None]) -> None:
        super().__init__()
        self._peer_tap = peer_tap
        self._samples = 0
        self._silence_due: float | None = None
        self._resampler: av.AudioResampler | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        tap = self._peer_tap()
        if tap is not None:
            try:
                frame = await asyncio.wait_for(tap.frames.get(), 0.1)
            except TimeoutError:
                frame = None
            if frame is not None:
                frame = self._conform(frame)
            if frame is not None:
                self._silence_due = None
                return self._stamp(frame, frame.samples)
        return await self._silence()

    def _conform(self, frame: av.AudioFrame) -> av.AudioFrame | None:
        if frame.format.name == SAMPLE_FORMAT and frame.layout.name == LAYOUT and frame.sample_rate == AUDIO_CLOCK_HZ:
            return frame
        if self._resampler is None:
            self._resampler = av.AudioResampler(format=SAMPLE_FORMAT, layout=LAYOUT, rate=AUDIO_CLOCK_HZ)
        converted = self._resampler.resample(frame)
        return converted[0] if converted else None

    async def _silence(self) -> av.AudioFrame:
        now = time.monotonic()
        if self._silence_due is None:
            self._silence_due = now
        wait = self._silence_due - now
        if wait > 0:
            await asyncio.sleep(wait)
        self._silence_due += OPUS_FRAME_SAMPLES / AUDIO_CLOCK_HZ
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 2 * OPUS_FRAME_SAMPLES), np.int16), format=SAMPLE_FORMAT, layout=LAYOUT
        )
        frame.sample_rate = AUDIO_CLOCK_HZ
        return self._stamp(frame, OPUS_FRAME_SAMPLES)

    def _stamp(self, frame: av.AudioFrame, duration: int) -> av.AudioFrame:
        frame.pts = self._samples
        frame.time_base = AUDIO_TIME_BASE
        self._samples += duration
        return frame
