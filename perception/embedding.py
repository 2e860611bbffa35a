"""Image embeddings for retrieval ("which earlier wounds looked like this?"): the contract between perception, which
computes them from the shipped models, and telehealth, which indexes and searches them.

An embedding is L2-normalised, so the inner product of two is their cosine similarity. Its `model_version` names
the model that made it: vectors of different versions are not comparable, and an index keyed by version knows when
it must be rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ImageEmbedding:
    vector: npt.NDArray[np.float32]  # shape (dim,), unit length
    model_name: str
    model_version: str

    @property
    def dim(self) -> int:
        return int(self.vector.shape[0])


class ImageEmbedder(Protocol):
    """Something that embeds an RGB image (H, W, 3, uint8). Blocking: call it from a worker thread."""

    @property
    def model_name(self) -> str: ...

    @property
    def model_version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, rgb: npt.NDArray[np.uint8]) -> ImageEmbedding: ...
