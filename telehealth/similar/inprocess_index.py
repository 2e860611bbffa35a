"""The in-process index: faiss (exact inner product) when faiss-cpu imports, else the same exact search in numpy.

Used where no vector extension is at hand (PostgreSQL without pgvector, a SQLite that cannot load extensions). It
lives in memory only and is rebuilt from the stored vectors at every start, so it survives a restart by being
derived, not by being saved. Exact search over a clinic's photos (thousands, not millions) is fast enough that an
approximate index would only cost recall.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np

from telehealth.similar.index import SearchHit, Vector, check_vector

faiss: Any
try:
    import faiss
except ImportError:  # the exact numpy search below gives the same answers, slower on large stores
    faiss = None


def faiss_available() -> bool:
    return faiss is not None


class FaissIndex:
    """IndexIDMap2 over IndexFlatIP: photo ids are the faiss ids; a search is restricted with an id selector."""

    backend = "faiss"

    def __init__(self) -> None:
        if faiss is None:
            raise RuntimeError("faiss-cpu is not installed")
        self._lock = threading.Lock()
        self._version: str | None = None
        self._dim: int | None = None
        self._index: Any = None  # faiss.IndexIDMap2 (its stubs do not cover the calls below)

    @property
    def model_version(self) -> str | None:
        return self._version

    def count(self) -> int:
        with self._lock:
            return 0 if self._index is None else int(self._index.ntotal)

    def rebuild(self, model_version: str, dim: int, vectors: Iterable[tuple[int, Vector]]) -> None:
        pairs = list(vectors)
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if pairs:
            ids = np.array([p for p, _v in pairs], dtype=np.int64)
            index.add_with_ids(np.stack([check_vector(v, dim, model_version, model_version) for _p, v in pairs]), ids)
        with self._lock:
            self._index, self._version, self._dim = index, model_version, dim

    def add(self, photo_id: int, vector: Vector, model_version: str) -> None:
        with self._lock:
            v = check_vector(vector, self._dim, model_version, self._version)
            ids = np.array([photo_id], dtype=np.int64)
            self._index.remove_ids(faiss.IDSelectorBatch(ids))
            self._index.add_with_ids(v[None, :], ids)

    def remove(self, photo_id: int) -> None:
        with self._lock:
            if self._index is not None:
                self._index.remove_ids(faiss.IDSelectorBatch(np.array([photo_id], dtype=np.int64)))

    def search(self, query: Vector, k: int, allowed: Collection[int]) -> list[SearchHit]:
        if not allowed or k < 1:
            return []
        with self._lock:
            if self._index is None or self._index.ntotal == 0:
                return []
            q = check_vector(query, self._dim, self._version or "", self._version)
            selector = faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64))
            scores, ids = self._index.search(q[None, :], k, params=faiss.SearchParameters(sel=selector))
        return [SearchHit(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def close(self) -> None:
        with self._lock:
            self._index = None


class ExactIndex:
    """Brute-force inner product in numpy: the last resort, with nothing beyond numpy installed."""

    backend = "exact"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: str | None = None
        self._dim: int | None = None
        self._vectors: dict[int, Vector] = {}

    @property
    def model_version(self) -> str | None:
        return self._version

    def count(self) -> int:
        with self._lock:
            return len(self._vectors)

    def rebuild(self, model_version: str, dim: int, vectors: Iterable[tuple[int, Vector]]) -> None:
        fresh = {p: check_vector(v, dim, model_version, model_version) for p, v in vectors}
        with self._lock:
            self._vectors, self._version, self._dim = fresh, model_version, dim

    def add(self, photo_id: int, vector: Vector, model_version: str) -> None:
        with self._lock:
            self._vectors[photo_id] = check_vector(vector, self._dim, model_version, self._version)

    def remove(self, photo_id: int) -> None:
        with self._lock:
            self._vectors.pop(photo_id, None)

    def search(self, query: Vector, k: int, allowed: Collection[int]) -> list[SearchHit]:
        if k < 1:
            return []
        with self._lock:
            ids = [p for p in allowed if p in self._vectors]
            if not ids:
                return []
            q = check_vector(query, self._dim, self._version or "", self._version)
            matrix = np.stack([self._vectors[p] for p in ids])
        scores = matrix @ q
        best = np.argsort(-scores, kind="stable")[:k]
        return [SearchHit(ids[i], float(scores[i])) for i in best]

    def close(self) -> None:
        with self._lock:
            self._vectors = {}


def in_process_index() -> FaissIndex | ExactIndex:
    return FaissIndex() if faiss is not None else ExactIndex()
