"""A recording the server never closed (it was killed or lost power mid-recording): cut the file back to its last
whole fragment and measure what is left, so it plays and the catalogue can say how long it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from stream.recording.mp4_boxes import truncate_to_complete


@dataclass(frozen=True)
class RecoveredFile:
    size_bytes: int
    frames: int
    duration_s: float


def recover_file(path: Path) -> RecoveredFile:
    """Blocking (file I/O and a demux without decoding)."""
    if not path.exists():
        return RecoveredFile(0, 0, 0.0)
    size = truncate_to_complete(path)
    frames, last = 0, 0.0
    try:
        with av.open(str(path)) as container:
            if container.streams.video:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    if packet.pts is None or packet.time_base is None:
                        continue
                    frames += 1
                    last = max(last, float(packet.pts * packet.time_base))
    except av.FFmpegError:  # only the header survived: nothing to play
        return RecoveredFile(size, 0, 0.0)
    return RecoveredFile(size, frames, round(last, 3))
