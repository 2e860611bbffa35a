"""A deterministic image embedder for the similar-cases tests: a joint RGB colour histogram of the image at 64 px,
L2-normalised. Photos of one wound at different sizes land near each other; a random texture lands far away."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
from PIL import Image

from perception.embedding import ImageEmbedding

BINS = 6


class ColourHistogramEmbedder:
    def __init__(self, model_version: str = "hist-1", gate: threading.Event | None = None) -> None:
        self._version = model_version
        self._gate = gate  # when given, each embed waits for it: lets a test look at the index mid-update
        self.calls = 0
        # Set when an embed call starts: the runner has loaded this embedder and rebuilt the index by then.
        self.embedding_started = threading.Event()

    @property
    def model_name(self) -> str:
        return "colour-histogram"

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def dim(self) -> int:
        return BINS**3

    def embed(self, rgb: npt.NDArray[np.uint8]) -> ImageEmbedding:
        self.embedding_started.set()
        if self._gate is not None:
            self._gate.wait(30)
        self.calls += 1
        small = np.asarray(Image.fromarray(rgb, "RGB").resize((64, 64)), dtype=np.int32)
        q = small * BINS // 256
        codes = (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]
        hist = np.bincount(codes.ravel(), minlength=self.dim).astype(np.float32)
        hist = np.sqrt(hist)  # a Hellinger-style map: the background's big bins do not swamp the wound's
        return ImageEmbedding(hist / np.linalg.norm(hist), self.model_name, self._version)
