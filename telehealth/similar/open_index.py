"""Which vector index a server runs on, and the start-up line that says why.

SQLite: sqlite-vec when it loads (a vec0 table in its own file), else the in-process index. PostgreSQL: the
in-process index, built from the stored vectors at each start; the pgvector extension, when the server has it, is
reported but not used yet (no pgvector was installable where this was built, so that path is untested).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from telehealth.similar.index import VectorIndex
from telehealth.similar.inprocess_index import faiss_available, in_process_index
from telehealth.similar.sqlite_vec_index import SqliteVecIndex, extension_sqlite


class IndexUnavailable(Exception):
    """The configured index cannot run here (e.g. sqlite-vec asked for, and it cannot be loaded)."""


@dataclass(frozen=True)
class OpenedIndex:
    index: VectorIndex
    message: str  # for the start-up log: which backend, and why not a better one


def _fallback(why: str) -> OpenedIndex:
    index = in_process_index()
    how = "faiss exact search" if faiss_available() else "exact numpy search (faiss-cpu is not installed)"
    return OpenedIndex(index, f"similar cases: {why}; using the in-process index ({how}) built from the stored vectors")


def open_index(choice: str, path: Path, database: str, pgvector_on_server: bool | None = None) -> OpenedIndex:
    """The index for `choice` ("auto", "sqlite-vec", "in-process") over a `database` ("sqlite" or "postgresql")."""
    if choice == "in-process":
        return _fallback("the in-process index was chosen (SCOPECAST_TELEHEALTH_SIMILAR_INDEX)")
    if database != "sqlite":
        if choice == "sqlite-vec":
            raise IndexUnavailable("SIMILAR_INDEX=sqlite-vec needs the SQLite database; this one is PostgreSQL")
        if pgvector_on_server:
            return _fallback("the server has the pgvector extension, but scopecast does not use it yet")
        return _fallback("the PostgreSQL server has no pgvector extension (vector search extension missing)")
    sqlite, reason = extension_sqlite()
    if sqlite is None:
        if choice == "sqlite-vec":
            raise IndexUnavailable(f"SIMILAR_INDEX=sqlite-vec, but {reason}")
        return _fallback(f"sqlite-vec is unavailable: {reason}")
    try:
        index = SqliteVecIndex(path, sqlite)
    except Exception as exc:  # noqa: BLE001 - a broken extension must not stop the clinic's server; say why
        if choice == "sqlite-vec":
            raise IndexUnavailable(f"sqlite-vec failed to load: {type(exc).__name__}: {exc}") from exc
        return _fallback(f"sqlite-vec failed to load ({type(exc).__name__}: {exc})")
    return OpenedIndex(index, f"similar cases: sqlite-vec index at {path.name} ({reason})")
