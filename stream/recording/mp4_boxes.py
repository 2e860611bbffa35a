"""Finding where a fragmented MP4 stops being whole, so a recording cut short (disk full, killed) stays playable.

A fragmented MP4 is a run of top-level boxes: ftyp, moov (no samples), then moof + mdat pairs. A write that failed
part-way leaves a box that runs past the end of the file, or a moof without its mdat; everything before that is a
complete, playable file.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path


def complete_prefix(path: Path) -> int:
    """Bytes of `path` that form whole boxes, ending after a complete moof + mdat pair (or after moov)."""
    size = path.stat().st_size
    good = 0
    offset = 0
    pending_moof = False
    with path.open("rb") as f:
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) >= 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            if box_size < 8 or offset + box_size > size:
                break
            offset += box_size
            if kind == b"moof":
                pending_moof = True
                continue
            if kind == b"mdat":
                pending_moof = False
            if not pending_moof:
                good = offset
    return good


def truncate_to_complete(path: Path) -> int:
    """Cut a torn tail off `path`; returns the size kept. Truncating frees space, so it works on a full disk."""
    keep = complete_prefix(path)
    if keep < path.stat().st_size:
        os.truncate(path, keep)
    return keep
