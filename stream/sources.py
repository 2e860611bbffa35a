"""Server-side video sources opened with PyAV: files, RTSP/HTTP URLs, capture devices.

A source decodes in its own thread and hands each frame to a callback on the
event loop. Files play at their own frame rate and may loop; live sources are
not paced (they arrive in real time already).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av

log = logging.getLogger(__name__)

_LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "srt://")


class SourceError(RuntimeError):
    """A source could not be opened or decoded; the message names the source and the reason."""


@dataclass(frozen=True)
class SourceSpec:
    """Where frames come from. `location` is a path, a URL or a device ("/dev/video0")."""

    location: str
    loop: bool = True

    @property
    def is_live(self) -> bool:
        return self.location.startswith(_LIVE_SCHEMES) or self.is_device

    @property
    def is_device(self) -> bool:
        return self.location.startswith("/dev/video")

    @property
    def display_name(self) -> str:
        """A label safe to show to viewers: a file's name, or a URL without credentials or query."""
        if self.is_live and "://" in self.location:
            scheme, rest = self.location.split("://", 1)
            host_and_path = rest.rsplit("@", 1)[-1].split("?", 1)[0]
            return f"{scheme}://{host_and_path}"
        return Path(self.location).name

    @property
    def loggable(self) -> str:
        """The location for messages and logs: full paths for files, URLs without credentials."""
        return self.display_name if self.is_live else self.location

    def open_container(self) -> av.container.InputContainer:
        """Open and check the source; raises SourceError with a clear reason."""
        if not self.is_live and not Path(self.location).is_file():
            raise SourceError(f"source file not found: {self.location}")
        options: dict[str, str] = {}
        fmt: str | None = None
        if self.location.startswith(("rtsp://", "rtsps://")):
            options = {"rtsp_transport": "tcp"}
        if self.is_device:
            fmt = "v4l2"
        try:
            container = av.open(self.location, format=fmt, options=options, timeout=10.0)
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open source {self.loggable}: {exc}") from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"source {self.loggable} has no video stream")
        return container


def probe_source(spec: SourceSpec) -> tuple[int, int, float]:
    """Open the source, decode one frame, return (width, height, fps). Raises SourceError."""
    container = spec.open_container()
    try:
        stream = container.streams.video[0]
        try:
            frame = next(container.decode(stream))
        except (av.FFmpegError, StopIteration, ValueError) as exc:
            raise SourceError(f"cannot decode video from {spec.loggable}: {exc or 'no frames'}") from exc
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        return frame.width, frame.height, rate
    finally:
        container.close()


class VideoSource:
    """Decodes a source in a daemon thread and delivers frames with `on_frame` on `loop`.

    `on_end` is called on the loop with None when the source ends normally, or
    with a SourceError when it fails mid-stream.
    """

    def __init__(
        self,
        spec: SourceSpec,
        loop: asyncio.AbstractEventLoop,
        on_frame: Callable[[av.VideoFrame], None],
        on_end: Callable[[SourceError | None], None],
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        """`wanted` says whether anyone needs frames now: a file nobody watches is not decoded (it resumes where it
        stopped); a live source is always read, or it would fall behind its camera."""
        self._spec = spec
        self._wanted = wanted
        self._loop = loop
        self._on_frame = on_frame
        self._on_end = on_end
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"source:{spec.display_name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        error: SourceError | None = None
        try:
            self._play()
        except SourceError as exc:
            error = exc
        except Exception as exc:  # a decoder can fail in many ways mid-stream
            error = SourceError(f"source {self._spec.loggable} failed: {exc}")
        if not self._stop.is_set():
            try:
                self._loop.call_soon_threadsafe(self._on_end, error)
            except RuntimeError:  # loop already closed at shutdown
                pass

    def _play(self) -> None:
        container = self._spec.open_container()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            paced = not self._spec.is_live
            clock_start = time.monotonic()
            media_offset = 0.0  # seconds of media already played in earlier loops
            last_time = 0.0
            while not self._stop.is_set():
                got_frame = False
                for frame in container.decode(stream):
                    if self._stop.is_set():
                        return
                    got_frame = True
                    t = media_offset + (frame.time or 0.0)
                    last_time = t
                    if paced and self._wanted is not None and not self._wanted():
                        self._idle_until_wanted()
                        clock_start = time.monotonic() - t  # pick up from here, without a burst of frames
                    if paced:
                        delay = clock_start + t - time.monotonic()
                        if delay > 0:
                            self._stop.wait(delay)
                        elif delay < -1.0:
                            # Fell over a second behind (machine busy): skip ahead, never burst.
                            clock_start = time.monotonic() - t
                    self._deliver(frame)
                if not self._spec.loop or self._spec.is_live or not got_frame:
                    return
                container.seek(0)
                media_offset = last_time + 1.0 / float(stream.average_rate or 25)
        finally:
            container.close()

    def _idle_until_wanted(self) -> None:
        while not self._stop.is_set() and self._wanted is not None and not self._wanted():
            self._stop.wait(0.05)

    def _deliver(self, frame: av.VideoFrame) -> None:
        try:
            self._loop.call_soon_threadsafe(self._on_frame, frame)
        except RuntimeError:
            self._stop.set()
