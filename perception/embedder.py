"""``OnnxImageEmbedder``: image embeddings (``perception.embedding``) from a shipped segmentation ONNX.

The shipped graphs carry an ``embedding`` output beside the logits (added by ``perception.export_embedding``: the
encoder's 1/16 feature map averaged over space, L2-normalised). This runs that graph on onnxruntime, the base
install's runtime, with exactly the segmentation model's preprocessing (``preprocess_frame``), so an image is
embedded from the same pixels it is analysed from.

``model_version`` is ``<model>-<version>+<embedding version>`` (``polyp-2.0+emb1``): a retrained model or a new
embedding recipe changes it, and an index keyed by it knows its vectors must be recomputed.

onnxruntime runs the whole graph whatever outputs are asked for, so an embedding costs one segmentation run
(p50 27 ms on one CPU thread at 256 x 256, measured on CVC frames). Blocking: call it from a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from perception.embedding import ImageEmbedding
from perception.model import ModelError, check_frame
from perception.runtimes.onnxrt import OnnxRuntime
from perception.segmentation_model import SegmentationMeta, normalisation, preprocess_frame

EMBEDDING_OUTPUT = "embedding"  # perception.export_embedding.EMBEDDING_OUTPUT (that module needs the onnx package)


def unit_rows(vectors: np.ndarray, where: str = "embedding") -> npt.NDArray[np.float32]:
    """Rows of ``vectors`` (N x D) scaled to unit length, as float32; ``ModelError`` for a zero or non-finite row.

    The graph already normalises; normalising again in float64 makes ``v @ v == 1`` hold to float32 precision
    whatever runtime computed it.
    """
    v = np.asarray(vectors, np.float64)
    if v.ndim != 2:
        raise ModelError(f"{where}: expected N x D vectors, got shape {v.shape}")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms <= 0):
        raise ModelError(f"{where}: a vector is zero or not finite, it has no direction to compare")
    out: npt.NDArray[np.float32] = (v / norms).astype(np.float32)
    return out


class OnnxImageEmbedder:
    """An ``ImageEmbedder`` on a segmentation ONNX with an ``embedding`` output.

    ``runtime`` lets a caller share an already open ``OnnxRuntime`` of the same file (one session in memory).
    ``ModelError`` when the file is missing, has no embedding output, or its metadata does not describe it.
    """

    def __init__(
        self, path: str | Path, *, threads: int = 1, device: str = "auto", runtime: OnnxRuntime | None = None
    ) -> None:
        self.path = Path(path)
        self._owns_runtime = runtime is None
        self._runtime = runtime if runtime is not None else OnnxRuntime(self.path, threads=threads, device=device)
        if EMBEDDING_OUTPUT not in self._runtime.output_names:
            raise ModelError(
                f"{self.path.name} has no {EMBEDDING_OUTPUT!r} output; add it with "
                f"`python -m perception.export_embedding {self.path}`"
            )
        meta = SegmentationMeta.from_dict(self._runtime.metadata, default_name=self.path.stem)
        entry = meta.extra.get("embedding")
        if not isinstance(entry, dict) or not entry.get("version") or not isinstance(entry.get("dim"), int):
            raise ModelError(f"{self.path.name}: the model's metadata has no valid 'embedding' entry (version, dim)")
        self._name = meta.name
        self._version = f"{meta.name}-{meta.version}+{entry['version']}"
        self._dim = int(entry["dim"])
        self._scale, self._offset = normalisation(meta)
        self.input_size = self._runtime.input_size
        # a first run proves the graph executes and that it and the metadata agree on the size (zeros may have
        # no direction, so only the shape is checked here)
        _, (probe,) = self._runtime.run_with(
            np.zeros((1, 3, self.input_size[1], self.input_size[0]), np.float32), (EMBEDDING_OUTPUT,)
        )
        if np.shape(probe) != (1, self._dim):
            raise ModelError(
                f"{self.path.name}: {EMBEDDING_OUTPUT} has shape {np.shape(probe)[1:]}, metadata says {self._dim}"
            )

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, rgb: npt.NDArray[np.uint8]) -> ImageEmbedding:
        """The embedding of one RGB image (H x W x 3 uint8, any size: resized like the segmentation input)."""
        return self.embed_batch([rgb])[0]

    def embed_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[ImageEmbedding]:
        """Embeddings of several images in one network run (faster per image on a GPU)."""
        if len(images) == 0:
            return []
        batch = []
        for im in images:
            check_frame(im)
            batch.append(preprocess_frame(im, self.input_size, self._scale, self._offset))
        vectors = self._run(np.stack(batch))
        return [ImageEmbedding(vector=v, model_name=self._name, model_version=self._version) for v in vectors]

    def _run(self, batch: np.ndarray) -> npt.NDArray[np.float32]:
        _, (raw,) = self._runtime.run_with(batch, (EMBEDDING_OUTPUT,))
        raw = np.asarray(raw)
        if raw.shape != (len(batch), self._dim):
            raise ModelError(f"{self.path.name}: {EMBEDDING_OUTPUT} has shape {raw.shape} for a batch of {len(batch)}")
        return unit_rows(raw.reshape(len(batch), -1), self.path.name)

    def close(self) -> None:
        """Release the session unless it was shared with this embedder."""
        if self._owns_runtime:
            self._runtime.close()

    def __repr__(self) -> str:
        return f"OnnxImageEmbedder({self.path.name!r}, {self._version}, dim={self._dim})"
