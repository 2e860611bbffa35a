"""Files and directories only the service's own user may read: the database and the photo store hold patient data.

Modes are set explicitly rather than left to the umask (the usual 022 made the database 0644). Only what this code
creates gets 0700; a directory that already exists is the operator's choice and stays as it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents, each 0700 (mkdir(parents=True) would give the parents the umask's)."""
    missing = []
    at = path
    while not at.exists():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by another thread or process: theirs to set
            continue
        os.chmod(directory, DIR_MODE)  # the umask may have taken bits off mkdir's mode
    return path


def private_file(path: Path) -> None:
    """Make sure `path` exists (created empty if missing) and only its owner can read or write it."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o077:  # a file an earlier version (or a copy) left readable by others
            os.chmod(path, current & 0o700)
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
