"""What travels along a stream's pipeline: a source frame with its arrival times, and the model's result for one."""

from __future__ import annotations

from dataclasses import dataclass

import av

from perception.findings import FrameFindings


@dataclass(frozen=True)
class SourceFrame:
    frame: av.VideoFrame
    arrival: float  # time.monotonic() when the server got it
    capture_time: float  # time.time() at the same moment, for clients


@dataclass(frozen=True)
class ModelResult:
    seq: int
    source: SourceFrame
    findings: FrameFindings
