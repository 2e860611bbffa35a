"""Signed report PDFs on disk: content-addressed (named by their sha256), written once and never rewritten.

The bytes handed out for a signed version are exactly these; reading checks them against the name first, so a file
changed on disk is reported rather than served.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from telehealth.errors import TelehealthError
from telehealth.photo_files import atomic_write
from telehealth.private_files import private_dir

_NAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.pdf$")


@dataclass(frozen=True)
class StoredPdf:
    name: str  # relative to the folder: what the signed_report_pdfs row keeps
    sha256: str
    byte_size: int


class SignedPdfChanged(TelehealthError):
    """The file no longer has the bytes it was stored with: served as a 500 naming the file, never the bytes."""

    status_code = 500


class SignedPdfFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(self.root)

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError("not a signed report file name")
        return self.root / name

    def put(self, pdf: bytes) -> StoredPdf:
        digest = hashlib.sha256(pdf).hexdigest()
        name = f"{digest[:2]}/{digest}.pdf"
        target = self._path(name)
        if not (target.is_file() and target.stat().st_size == len(pdf)):
            private_dir(target.parent)
            atomic_write(target, pdf)
        return StoredPdf(name, digest, len(pdf))

    def read(self, name: str) -> bytes:
        data = self._path(name).read_bytes()
        if hashlib.sha256(data).hexdigest() != Path(name).stem:
            raise SignedPdfChanged(f"the stored signed PDF {name} no longer matches its sha256: restore it from backup")
        return data
