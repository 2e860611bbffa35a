"""Content-addressed photo files with crash-safe writes.

A file is written to a temp name in its final directory, fsynced, renamed over the target and the directory is
fsynced, so after a crash a path either holds the whole photo or does not exist. Leftover temp files are what
reconciliation removes.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from telehealth.private_files import private_dir

TEMP_PREFIX = ".tmp-"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
SUFFIX = ".jpg"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(target: Path, data: bytes) -> None:
    """Write `data` to `target` so that it is either wholly there, durably, or not there at all.

    Temp file in the same directory, fsync, rename over the target, fsync the
    directory: a crash at any point leaves no half-written file under `target`.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


class PhotoFiles:
    def __init__(self, root: Path, quarantine: Path) -> None:
        self.root = root
        self.quarantine = quarantine
        private_dir(self.root)

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError("not a sha256 hex digest")
        # Two-character shards keep any one directory small.
        return self.root / sha256[:2] / f"{sha256}{SUFFIX}"

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def put(self, sha256: str, data: bytes) -> Path:
        """Durably store `data` under its hash; a no-op when the same content is already there."""
        target = self.path_for(sha256)
        shard = target.parent
        if not shard.is_dir():
            private_dir(shard)
            fsync_dir(self.root)  # make the new shard directory itself durable
        if target.is_file() and target.stat().st_size == len(data):
            return target
        atomic_write(target, data)
        return target

    def read(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def stored_hashes(self) -> Iterator[tuple[str, Path]]:
        for shard in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in shard.iterdir():
                name = path.name.removesuffix(SUFFIX)
                if path.is_file() and path.name.endswith(SUFFIX) and _SHA256.match(name):
                    yield name, path

    def temp_files(self) -> Iterator[Path]:
        for shard in (p for p in self.root.iterdir() if p.is_dir()):
            yield from (p for p in shard.iterdir() if p.name.startswith(TEMP_PREFIX))

    def unknown_files(self) -> Iterator[Path]:
        """Files that are neither photos nor temp files (e.g. something copied in by hand)."""
        for entry in self.root.iterdir():
            if entry.is_file():
                yield entry
        for shard in (p for p in self.root.iterdir() if p.is_dir()):
            for path in shard.iterdir():
                name = path.name.removesuffix(SUFFIX)
                if not path.name.startswith(TEMP_PREFIX) and not (path.name.endswith(SUFFIX) and _SHA256.match(name)):
                    yield path

    def move_to_quarantine(self, path: Path) -> Path:
        private_dir(self.quarantine)
        target = self.quarantine / path.name
        os.replace(path, target)
        return target
