"""Telehealth settings for `scopecast serve` and `scopecast user`: environment, plus a local secret on first run."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from telehealth.private_files import private_dir
from telehealth.settings import TelehealthSettings

_SECRET_ENV = "SCOPECAST_TELEHEALTH_SECRET_KEY"


def telehealth_settings() -> TelehealthSettings:
    """Settings from SCOPECAST_TELEHEALTH_*; without a secret, one kept in DATA_DIR/secret.key.

    The embedded default must run without setup, yet sessions must survive a
    restart, so the secret is made once, stored owner-only, and reused.
    """
    if os.environ.get(_SECRET_ENV):
        return TelehealthSettings()
    data_dir = Path(os.environ.get("SCOPECAST_TELEHEALTH_DATA_DIR", "var/telehealth"))
    secret_file = data_dir / "secret.key"
    if not secret_file.exists():
        private_dir(data_dir)  # owner-only: it holds the secret, the database and the photos
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return TelehealthSettings(secret_key=secret_file.read_text().strip())
