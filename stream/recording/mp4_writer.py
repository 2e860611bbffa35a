"""The direct path's file: H.264 (and, when consented, AAC audio) in a fragmented MP4, written by PyAV.

Fragmented (`frag_keyframe+empty_moov`) so the file is playable up to the last whole fragment whatever stops the
writing; a keyframe every `keyframe_interval_s` bounds what a failure can lose. Every method blocks: the recorder
calls them on its own writer thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import fractions
from dataclasses import dataclass
from typing import BinaryIO

import av
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from stream.media_clock import AUDIO_CLOCK_HZ, VIDEO_CLOCK_HZ, VIDEO_TIME_BASE

AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_CLOCK_HZ)
MP4_FLAGS = "frag_keyframe+empty_moov+default_base_moof"


@dataclass(frozen=True)
class VideoFormat:
    width: int
    height: int
    fps_hint: int = 30
    keyframe_interval_s: float = 1.0
    crf: int = 23


class Mp4Writer:
    """Encodes frames stamped in media-clock units (video 90 kHz, audio 48 kHz) counted from the recording's start."""

    def __init__(self, sink: BinaryIO, video: VideoFormat, with_audio: bool) -> None:
        self._sink = sink
        self._format = video
        self._container = av.open(sink, mode="w", format="mp4", options={"movflags": MP4_FLAGS})
        stream = self._container.add_stream("libx264", rate=video.fps_hint)
        assert isinstance(stream, VideoStream)
        # H.264 in yuv420p needs even sides.
        stream.width = video.width - video.width % 2
        stream.height = video.height - video.height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = VIDEO_TIME_BASE
        stream.codec_context.time_base = VIDEO_TIME_BASE
        gop = max(1, round(video.fps_hint * video.keyframe_interval_s))
        stream.codec_context.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "crf": str(video.crf),
            "g": str(gop),
            "keyint_min": str(gop),
        }
        self._video = stream
        self._audio: AudioStream | None = None
        self._resampler: av.AudioResampler | None = None
        self._fifo: av.AudioFifo | None = None
        if with_audio:
            audio = self._container.add_stream("aac", rate=AUDIO_CLOCK_HZ)
            assert isinstance(audio, AudioStream)
            audio.layout = "stereo"
            audio.time_base = AUDIO_TIME_BASE
            self._audio = audio
            self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_CLOCK_HZ)
            self._fifo = av.AudioFifo()
        self._last_video_pts = -1
        self._audio_next_pts: int | None = None

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def write_video(self, frame: av.VideoFrame, pts: int) -> bool:
        """Encode one frame at `pts` (90 kHz from the start); False when it was not after the previous one."""
        if pts <= self._last_video_pts:
            return False
        self._last_video_pts = pts
        stream = self._video
        # The frame is this recorder's own (the hub hands each reader a private copy), so it is stamped in place.
        frame = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        for packet in stream.encode(frame):
            self._container.mux(packet)
        return True

    def write_audio(self, frame: av.AudioFrame, start_pts: int) -> None:
        """Add sound; `start_pts` (48 kHz from the start) places the first frame, later ones follow on."""
        if self._audio is None or self._resampler is None or self._fifo is None:
            return
        if self._audio_next_pts is None:
            self._audio_next_pts = max(0, start_pts)
        frame.pts = None  # the FIFO restamps from the running count
        for converted in self._resampler.resample(frame):
            self._fifo.write(converted)
        size = self._audio.codec_context.frame_size or 1024
        while self._fifo.samples >= size:
            chunk = self._fifo.read(size)
            if chunk is None:
                break
            chunk.pts = self._audio_next_pts
            chunk.time_base = AUDIO_TIME_BASE
            self._audio_next_pts += chunk.samples
            for packet in self._audio.encode(chunk):
                self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoders and finish the file. Raises OSError when the last writes fail (the recorder then
        keeps the whole fragments already on disk)."""
        try:
            for packet in self._video.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                for packet in self._audio.encode(None):
                    self._container.mux(packet)
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Close without flushing (after a write failed): nothing more reaches the disk from here."""
        with contextlib.suppress(Exception):
            self._container.close()
        with contextlib.suppress(Exception):
            self._sink.close()


def video_seconds(pts: int) -> float:
    return pts / VIDEO_CLOCK_HZ
