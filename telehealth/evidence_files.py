"""Evidence images of wound analyses: content-addressed PNG files, written crash-safe like the photos."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from telehealth.photo_files import atomic_write
from telehealth.private_files import private_dir

_NAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.png$")


class EvidenceFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(self.root)

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError("not an evidence file name")
        return self.root / name

    def put(self, png: bytes) -> str:
        """Store `png` durably; returns its name relative to the evidence folder (what the analyses row keeps)."""
        digest = hashlib.sha256(png).hexdigest()
        name = f"{digest[:2]}/{digest}.png"
        target = self._path(name)
        if target.is_file() and target.stat().st_size == len(png):
            return name
        private_dir(target.parent)
        atomic_write(target, png)
        return name

    def read(self, name: str) -> bytes:
        return self._path(name).read_bytes()
