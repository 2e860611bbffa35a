"""Alembic migrations up and down on SQLite and PostgreSQL, and the database-level guards they install."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from postgres_server import fresh_database
from sqlalchemy.exc import DBAPIError

from telehealth.store.database import Database
from telehealth.store.migrate import downgrade_to, upgrade_to_head
from telehealth.store.tables import Base

TABLES = {t.name for t in Base.metadata.sorted_tables}


def table_names(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> Iterator[Database]:
    if request.param == "sqlite":
        made = Database(f"sqlite:///{tmp_path / 'm.db'}")
        yield made
        made.dispose()
        return
    with fresh_database(request.getfixturevalue("postgres_server")) as url:
        made = Database(url)
        yield made
        made.dispose()


def test_upgrade_downgrade_upgrade(db: Database) -> None:
    upgrade_to_head(db.engine)
    assert table_names(db) == TABLES
    downgrade_to(db.engine, "base")
    assert table_names(db) == set()
    upgrade_to_head(db.engine)
    assert table_names(db) == TABLES
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_models_match_migration(db: Database) -> None:
    """The typed models and the hand-written migration must describe the same columns."""
    upgrade_to_head(db.engine)
    inspector = sa.inspect(db.engine)
    for table in Base.metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.columns.keys()), table.name


def test_audit_log_is_append_only_and_signed_reports_are_immutable(db: Database) -> None:
    upgrade_to_head(db.engine)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO audit_events (at, actor_id, action, object_type, object_id) VALUES ('2026-01-01', 1, 'view', 'photo', 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO users (email, password_hash, role, disabled, created_at) VALUES ('a@b.c', 'x', 'gp', FALSE, '2026-01-01')"
        )
        conn.exec_driver_sql("INSERT INTO patients (user_id, gp_user_id, created_at) VALUES (NULL, 1, '2026-01-01')")
        conn.exec_driver_sql(
            "INSERT INTO wound_cases (patient_id, created_by, created_at, status) VALUES (1, 1, '2026-01-01', 'open')"
        )
        conn.exec_driver_sql("INSERT INTO reports (case_id, created_by, created_at) VALUES (1, 1, '2026-01-01')")
        conn.exec_driver_sql(
            "INSERT INTO report_versions (report_id, version, status, body, author_id, created_at) VALUES (1, 1, 'draft', '{}', 1, '2026-01-01')"
        )
        # A draft may still change; signing is the last change it takes.
        conn.exec_driver_sql("UPDATE report_versions SET body = '{\"a\": 1}' WHERE id = 1")
        conn.exec_driver_sql(
            "UPDATE report_versions SET status = 'signed', signed_by = 1, signed_at = '2026-01-02' WHERE id = 1"
        )
        conn.exec_driver_sql(
            "INSERT INTO signed_report_pdfs (version_id, sha256, byte_size, file_name, certificate_subject, created_at)"
            f" VALUES (1, '{'ab' * 32}', 10, 'ab/x.pdf', 'CN=test', '2026-01-02')"
        )
    for statement in (
        "UPDATE signed_report_pdfs SET byte_size = 11",
        "DELETE FROM signed_report_pdfs",
        "UPDATE audit_events SET action = 'edit'",
        "DELETE FROM audit_events",
        "UPDATE report_versions SET body = '{}' WHERE id = 1",
        "DELETE FROM report_versions WHERE id = 1",
    ):
        with pytest.raises(DBAPIError, match="append-only|immutable"), db.engine.begin() as conn:
            conn.exec_driver_sql(statement)
