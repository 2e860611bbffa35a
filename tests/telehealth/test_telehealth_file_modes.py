"""Patient data on disk is the owner's only: the SQLite file (and its WAL files) 0600, new data directories 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from telehealth_testutil import fast_settings, jpeg_bytes

from scopecast.app import build_telehealth
from telehealth.photo_files import PhotoFiles
from telehealth.store.database import Database
from telehealth.store.migrate import upgrade_to_head


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual 022: what made the database 0644 before; the code must not rely on a strict umask."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_sqlite_file_and_its_directories_are_private(tmp_path) -> None:
    db_path = tmp_path / "new" / "deeper" / "telehealth.db"
    operators = mode(tmp_path)
    db = Database(f"sqlite:///{db_path}")
    try:
        assert mode(db_path) == 0o600  # before SQLAlchemy ever opened it
        assert mode(db_path.parent) == mode(db_path.parent.parent) == 0o700
        assert mode(tmp_path) == operators  # a directory that was there already is left as the operator made it
        upgrade_to_head(db.engine)
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO audit_events (at, action, object_type) VALUES ('2026-01-01', 'view', 'x')"
            )
        companions = [p for p in db_path.parent.iterdir() if p.name.startswith("telehealth.db")]
        assert {p.name for p in companions} >= {"telehealth.db", "telehealth.db-wal", "telehealth.db-shm"}
        assert {p.name: mode(p) for p in companions} == {p.name: 0o600 for p in companions}
    finally:
        db.dispose()


def test_an_existing_world_readable_database_is_tightened(tmp_path) -> None:
    db_path = tmp_path / "telehealth.db"
    first = Database(f"sqlite:///{db_path}")
    upgrade_to_head(first.engine)
    first.dispose()
    os.chmod(db_path, 0o644)  # as earlier versions made it
    Database(f"sqlite:///{db_path}").dispose()
    assert mode(db_path) == 0o600


async def test_the_data_directory_and_photo_directories_are_private(tmp_path) -> None:
    services = build_telehealth(fast_settings(tmp_path / "var" / "telehealth"))
    try:
        data = tmp_path / "var" / "telehealth"
        assert mode(tmp_path / "var") == mode(data) == 0o700
        assert mode(data / "telehealth.db") == 0o600
        for sub in ("photos", "evidence"):
            assert mode(data / sub) == 0o700, sub
        files = PhotoFiles(data / "photos", data / "quarantine")
        stored = files.put("ab" * 32, jpeg_bytes(1))
        assert mode(stored) == 0o600 and mode(stored.parent) == 0o700
        assert mode(files.move_to_quarantine(stored)) == 0o600 and mode(data / "quarantine") == 0o700
    finally:
        await services.close()
