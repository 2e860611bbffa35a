"""The sqlite-vec index: a `vec0` virtual table (cosine distance, exact KNN) in its own SQLite file beside the
database, which survives a restart and records the model version it holds.

Its own file, not a table in telehealth.db: this Python's sqlite3 may be built without extension loading, in which
case pysqlite3 (a second copy of the SQLite library) opens the index, and two copies of SQLite in one process must
never open the same database file (each keeps its own POSIX-lock bookkeeping, which corrupts a shared file). The
index is derived data: deleting the file only costs a rebuild from the stored vectors.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from telehealth.private_files import private_file
from telehealth.similar.index import SearchHit, Vector, check_vector

_TABLE = "photo_vectors"
# sqlite-vec's KNN takes at most this many neighbours in one query.
MAX_K = 4096


def extension_sqlite() -> tuple[ModuleType | None, str]:
    """A DB-API sqlite module that can load sqlite-vec, or None and the reason none can."""
    try:
        import sqlite_vec  # noqa: F401
    except ImportError:
        return None, "sqlite-vec is not installed (pip install sqlite-vec)"
    import sqlite3

    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3, "sqlite-vec loaded into this Python's sqlite3"
    try:
        import pysqlite3.dbapi2 as bundled
    except ImportError:
        return None, (
            "this Python's sqlite3 was built without extension loading and pysqlite3-binary is not installed, "
            "so sqlite-vec cannot be loaded"
        )
    return bundled, "sqlite-vec loaded into pysqlite3 (this Python's sqlite3 cannot load extensions)"


class SqliteVecIndex:
    backend = "sqlite-vec"

    def __init__(self, path: Path, sqlite: ModuleType) -> None:
        import sqlite_vec

        private_file(path)
        self._lock = threading.Lock()
        self._conn: Any = sqlite.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.enable_load_extension(True)
        try:
            sqlite_vec.load(self._conn)
        finally:
            self._conn.enable_load_extension(False)  # nothing else may be loaded through this connection
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS index_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._version, self._dim = self._read_meta()

    def _read_meta(self) -> tuple[str | None, int | None]:
        meta = dict(self._conn.execute("SELECT key, value FROM index_meta").fetchall())
        has_table = self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (_TABLE,)).fetchone() is not None
        if "model_version" not in meta or "dim" not in meta or not has_table:
            return None, None
        return meta["model_version"], int(meta["dim"])

    @property
    def model_version(self) -> str | None:
        return self._version

    def count(self) -> int:
        with self._lock:
            if self._version is None:
                return 0
            return int(self._conn.execute(f"SELECT count(*) FROM {_TABLE}").fetchone()[0])

    def rebuild(self, model_version: str, dim: int, vectors: Iterable[tuple[int, Vector]]) -> None:
        rows = [(p, check_vector(v, dim, model_version, model_version).tobytes()) for p, v in vectors]
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")  # all or nothing: a crash mid-rebuild leaves the old index and its version
            try:
                c.execute(f"DROP TABLE IF EXISTS {_TABLE}")
                c.execute(
                    f"CREATE VIRTUAL TABLE {_TABLE} USING vec0("
                    f"photo_id integer primary key, embedding float[{int(dim)}] distance_metric=cosine)"
                )
                c.executemany(f"INSERT INTO {_TABLE}(photo_id, embedding) VALUES (?, ?)", rows)
                c.executemany(
                    "INSERT OR REPLACE INTO index_meta(key, value) VALUES (?, ?)",
                    [("model_version", model_version), ("dim", str(dim))],
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            self._version, self._dim = model_version, dim

    def add(self, photo_id: int, vector: Vector, model_version: str) -> None:
        with self._lock:
            v = check_vector(vector, self._dim, model_version, self._version)
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:  # vec0 has no INSERT OR REPLACE: delete, then insert
                c.execute(f"DELETE FROM {_TABLE} WHERE photo_id = ?", (photo_id,))
                c.execute(f"INSERT INTO {_TABLE}(photo_id, embedding) VALUES (?, ?)", (photo_id, v.tobytes()))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def remove(self, photo_id: int) -> None:
        with self._lock:
            if self._version is not None:
                self._conn.execute(f"DELETE FROM {_TABLE} WHERE photo_id = ?", (photo_id,))

    def search(self, query: Vector, k: int, allowed: Collection[int]) -> list[SearchHit]:
        if not allowed or k < 1:
            return []
        with self._lock:
            if self._version is None:
                return []
            q = check_vector(query, self._dim, self._version, self._version)
            # The allowed ids go in as one JSON array: no limit on bound parameters, and vec0 filters on its primary
            # key before ranking, so the k come from the allowed photos only.
            rows = self._conn.execute(
                f"SELECT photo_id, distance FROM {_TABLE} WHERE embedding MATCH ? AND k = ? "
                "AND photo_id IN (SELECT value FROM json_each(?)) ORDER BY distance",
                (q.tobytes(), min(k, MAX_K), json.dumps(sorted(int(p) for p in allowed))),
            ).fetchall()
        # Cosine distance is 1 - cosine similarity.
        return [SearchHit(int(p), float(np.float32(1.0) - np.float32(d))) for p, d in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
