"""The findings track beside a recording: one JSON line per processed frame, keyed by its time in the video.

`pts` counts in the video's own 90 kHz clock from the recording's first frame, so a player finds the findings of
the frame on screen from the video's currentTime (or requestVideoFrameCallback's mediaTime) alone.
"""

from __future__ import annotations

from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from stream.events import FindingsEvent
from stream.media_clock import VIDEO_CLOCK_HZ


class FindingsLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    t: float = Field(description="seconds from the start of the recording (the video's currentTime)")
    pts: int = Field(description="the same time in the video's 90 kHz clock, equal to the recorded frame's pts")
    event: FindingsEvent


def findings_line(event: FindingsEvent, pts: int) -> bytes:
    line = FindingsLine(t=round(pts / VIDEO_CLOCK_HZ, 6), pts=pts, event=event)
    return line.model_dump_json().encode() + b"\n"


class FindingsTrackWriter:
    """Appends lines, flushing each: a recording cut short keeps every line written before the cut."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self.lines = 0

    def write(self, line: bytes) -> None:
        self._sink.write(line)
        self._sink.flush()
        self.lines += 1

    def close(self) -> None:
        self._sink.close()


def read_findings_track(data: bytes) -> list[FindingsLine]:
    """Parse a whole track; a torn last line (the write that failed) is left out."""
    lines = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            lines.append(FindingsLine.model_validate_json(raw))
        except ValueError:
            break
    return lines
