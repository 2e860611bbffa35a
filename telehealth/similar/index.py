"""The one interface every similar-cases vector index has, whichever backend holds it.

Vectors are unit length (perception.embedding), so the score is the cosine similarity: 1 is the same image, 0
unrelated. An index holds the vectors of exactly one model version; `rebuild` replaces them all, e.g. when the
embedding model changes. Implementations are safe to call from several threads (the embedding worker adds while
request threads search).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SearchHit:
    photo_id: int
    score: float  # cosine similarity, -1..1 (1: the same image)


class IndexVersionMismatch(Exception):
    """A vector of one model version offered to an index built for another (or of another length)."""


class VectorIndex(Protocol):
    @property
    def backend(self) -> str:
        """What holds the vectors, for logs and the status route: "sqlite-vec", "faiss" or "exact"."""
        ...

    @property
    def model_version(self) -> str | None:
        """The model version of the vectors it holds; None before its first rebuild."""
        ...

    def count(self) -> int: ...

    def add(self, photo_id: int, vector: Vector, model_version: str) -> None:
        """Add or replace one photo's vector; IndexVersionMismatch if the index holds another version or length."""
        ...

    def remove(self, photo_id: int) -> None: ...

    def search(self, query: Vector, k: int, allowed: Collection[int]) -> list[SearchHit]:
        """The k nearest among `allowed` photo ids only (the caller's visibility rules), best first."""
        ...

    def rebuild(self, model_version: str, dim: int, vectors: Iterable[tuple[int, Vector]]) -> None:
        """Replace everything with these vectors of `model_version`."""
        ...

    def close(self) -> None: ...


def check_vector(vector: Vector, dim: int | None, model_version: str, held: str | None) -> Vector:
    """The vector as contiguous float32, refusing one that does not belong in an index of `held` / `dim`."""
    if held is None or dim is None:
        raise IndexVersionMismatch("the index is empty: rebuild it for a model version before adding vectors")
    if model_version != held:
        raise IndexVersionMismatch(f"a vector of model version {model_version!r} for an index of {held!r}")
    out = np.ascontiguousarray(vector, dtype=np.float32)
    if out.shape != (dim,):
        raise IndexVersionMismatch(f"a vector of {out.shape} for an index of dimension {dim}")
    return out
