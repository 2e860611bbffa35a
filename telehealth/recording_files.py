"""Where recordings live on disk: one folder, file names made here (random, never from a request)."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from telehealth.private_files import private_dir


class RecordingFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def new_names(self, case_id: int) -> tuple[str, str]:
        """(video, findings) file names for a new recording of `case_id`."""
        stem = f"case{case_id}-{secrets.token_hex(8)}"
        return f"{stem}.mp4", f"{stem}.findings.jsonl"

    def path(self, name: str) -> Path:
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"not a recording file name: {name!r}")
        private_dir(self.folder)
        return self.folder / name

    def size(self, name: str) -> int | None:
        try:
            return self.path(name).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, *names: str) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                self.path(name).unlink()
