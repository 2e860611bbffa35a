"""Whether the PostgreSQL server offers the pgvector extension (for the start-up message; SQLite: None)."""

from __future__ import annotations

from sqlalchemy import text

from telehealth.store.database import Database


def pgvector_available(db: Database) -> bool | None:
    if db.is_sqlite:
        return None
    with db.engine.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
    return found is not None
