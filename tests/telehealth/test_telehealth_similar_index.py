"""The similar-cases vector index: the same round trip on every backend (sqlite-vec where it loads, faiss, exact
numpy), the sqlite-vec file surviving a restart, and the start-up choice of backend with its message."""

from __future__ import annotations

import numpy as np
import pytest

from telehealth.similar import open_index as open_index_module
from telehealth.similar.index import IndexVersionMismatch
from telehealth.similar.inprocess_index import ExactIndex, FaissIndex, faiss_available
from telehealth.similar.open_index import IndexUnavailable, open_index
from telehealth.similar.sqlite_vec_index import SqliteVecIndex, extension_sqlite


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


VECTORS = [(1, unit(1, 0, 0, 0)), (2, unit(0.9, 0.1, 0, 0)), (3, unit(0, 1, 0, 0)), (4, unit(0, 0, 1, 1))]


def make(backend: str, tmp_path):  # type: ignore[no-untyped-def]
    if backend == "sqlite-vec":
        sqlite, reason = extension_sqlite()
        if sqlite is None:
            pytest.skip(reason)
        return SqliteVecIndex(tmp_path / "index.sqlite", sqlite)
    if backend == "faiss":
        if not faiss_available():
            pytest.skip("faiss-cpu is not installed")
        return FaissIndex()
    return ExactIndex()


@pytest.mark.parametrize("backend", ["sqlite-vec", "faiss", "exact"])
def test_index_round_trip(backend: str, tmp_path) -> None:
    index = make(backend, tmp_path)
    assert index.backend == backend
    assert index.model_version is None and index.count() == 0
    with pytest.raises(IndexVersionMismatch, match="rebuild"):
        index.add(9, unit(1, 0, 0, 0), "v1")
    index.rebuild("v1", 4, VECTORS)
    assert index.model_version == "v1" and index.count() == 4

    hits = index.search(unit(1, 0.05, 0, 0), 2, {1, 2, 3, 4})
    assert [h.photo_id for h in hits] == [1, 2]
    assert hits[0].score == pytest.approx(float(unit(1, 0.05, 0, 0) @ unit(1, 0, 0, 0)), abs=1e-5)
    # The allowed ids decide: the nearest photo the caller may not see is never returned.
    assert [h.photo_id for h in index.search(unit(1, 0.3, 0.1, 0), 2, {3, 4})] == [3, 4]
    assert index.search(unit(1, 0, 0, 0), 3, set()) == []

    index.add(5, unit(1, 0.01, 0, 0), "v1")
    index.add(3, unit(0, 0, 0, 1), "v1")  # replaces photo 3's vector
    assert index.count() == 5
    assert index.search(unit(0, 0, 0, 1), 1, {3})[0].score == pytest.approx(1.0, abs=1e-5)
    index.remove(1)
    assert [h.photo_id for h in index.search(unit(1, 0, 0, 0), 2, {1, 2, 5})] == [5, 2]

    with pytest.raises(IndexVersionMismatch, match="'v2'"):
        index.add(6, unit(1, 0, 0, 0), "v2")
    with pytest.raises(IndexVersionMismatch, match="dimension 4"):
        index.add(6, unit(1, 0, 0), "v1")
    index.rebuild("v2", 3, [(7, unit(0, 0, 1))])
    assert index.model_version == "v2" and index.count() == 1
    assert [h.photo_id for h in index.search(unit(0, 1, 1), 5, {1, 2, 7})] == [7]
    index.close()


def test_sqlite_vec_index_survives_a_restart(tmp_path) -> None:
    sqlite, reason = extension_sqlite()
    if sqlite is None:
        pytest.skip(reason)
    first = SqliteVecIndex(tmp_path / "index.sqlite", sqlite)
    first.rebuild("v1", 4, VECTORS)
    first.add(5, unit(0, 0, 0, 1), "v1")
    first.close()
    again = SqliteVecIndex(tmp_path / "index.sqlite", sqlite)
    assert again.model_version == "v1" and again.count() == 5
    assert [h.photo_id for h in again.search(unit(0, 0, 0, 1), 1, {4, 5})] == [5]
    assert (tmp_path / "index.sqlite").stat().st_mode & 0o077 == 0  # vectors of patients' photos: owner only
    again.close()


def test_backend_choice_and_its_start_up_message(tmp_path, monkeypatch) -> None:
    on_postgres = open_index("auto", tmp_path / "i.sqlite", "postgresql", pgvector_on_server=False)
    assert on_postgres.index.backend in ("faiss", "exact")
    assert "no pgvector extension" in on_postgres.message and "in-process index" in on_postgres.message
    with_pgvector = open_index("auto", tmp_path / "i.sqlite", "postgresql", pgvector_on_server=True)
    assert "does not use it yet" in with_pgvector.message
    with pytest.raises(IndexUnavailable, match="needs the SQLite database"):
        open_index("sqlite-vec", tmp_path / "i.sqlite", "postgresql")
    chosen = open_index("in-process", tmp_path / "i.sqlite", "sqlite")
    assert chosen.index.backend in ("faiss", "exact") and "was chosen" in chosen.message

    # A SQLite that cannot load extensions: the exact fallback, and a message that says why.
    monkeypatch.setattr(open_index_module, "extension_sqlite", lambda: (None, "sqlite3 cannot load extensions"))
    fallback = open_index("auto", tmp_path / "i.sqlite", "sqlite")
    assert fallback.index.backend in ("faiss", "exact")
    assert fallback.message.startswith("similar cases: sqlite-vec is unavailable: sqlite3 cannot load extensions")
    with pytest.raises(IndexUnavailable, match="cannot load extensions"):
        open_index("sqlite-vec", tmp_path / "i.sqlite", "sqlite")
