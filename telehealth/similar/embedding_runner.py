"""Embeds stored photos in the background, on one worker thread with its own embedder, and keeps the vector index
in step with the stored vectors.

After each analysis (uploads and consult captures alike) the photo is queued here. `start()` (once serving)
rebuilds the index when it holds another model version than the embedder's, then embeds every photo that lacks a
vector of the current version, logging progress; `status()` says how far it is.
"""

from __future__ import annotations

import enum
import io
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from perception.embedding import ImageEmbedder
from telehealth.similar.index import IndexVersionMismatch, VectorIndex
from telehealth.store.cases import CaseStore
from telehealth.store.embeddings import (
    embeddable_photo_count,
    embedding_of,
    photo_file_sha256,
    photos_lacking_embedding,
    save_embedding,
    stored_vectors,
)

log = logging.getLogger(__name__)

# Called once, on the embedding thread: an embedder, or None when no embedding model is installed.
EmbedderFactory = Callable[[], ImageEmbedder | None]
NO_MODEL = "similar cases off: no embedding model"
# Photos are decoded at reduced scale (JPEG's DCT scaling) to at least this long side: embedding models take a few
# hundred pixels, and the worker shares two cores with the server.
DECODE_PX = 1024
PROGRESS_EVERY = 25


class SimilarState(str, enum.Enum):
    starting = "starting"  # the embedder is not loaded yet
    updating = "updating"  # re-embedding photos for the current model version
    ready = "ready"
    off = "off"  # no embedding model


@dataclass(frozen=True)
class SimilarStatus:
    state: SimilarState
    model_version: str | None
    embedded: int  # photos in the index (of model_version)
    total: int  # stored photos
    backend: str
    message: str


def onnx_embedder_factory(model_path: Path | None) -> EmbedderFactory:
    """perception.embedder.OnnxImageEmbedder over the shipped wound model, or None (and a log line saying so)."""

    def load() -> ImageEmbedder | None:
        from perception.embedder import OnnxImageEmbedder
        from perception.model import ModelError
        from telehealth.wound import default_wound_model_path

        path = model_path if model_path is not None else default_wound_model_path()
        if not path.is_file():
            log.warning(f"{NO_MODEL} (no wound model at {path})")
            return None
        try:
            return OnnxImageEmbedder(path)
        except ModelError as exc:  # e.g. a wound model exported before it had an embedding output
            log.warning(f"{NO_MODEL} ({exc})")
            return None

    return load


def decode_for_embedding(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (DECODE_PX, DECODE_PX))  # a no-op for formats other than JPEG
        return np.asarray(img.convert("RGB"))


class EmbeddingRunner:
    def __init__(self, store: CaseStore, index: VectorIndex, factory: EmbedderFactory) -> None:
        self.store = store
        self.index = index
        self._factory = factory
        # One thread: the embedder is not safe for concurrent calls, and the cores are shared with the server.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photo-embedding")
        self._lock = threading.Lock()  # guards the fields below, read by request threads
        self._off = False
        self._catching_up = False  # from start() until its re-embedding is done: answers say "being updated"
        self._embedder: ImageEmbedder | None = None
        self._loaded = False
        self._pending: set[Future[None]] = set()

    # -- on the embedding thread -------------------------------------------------------------------------------

    def _prepare(self) -> ImageEmbedder | None:
        """Load the embedder once; make the index hold the current version's stored vectors."""
        if self._loaded:
            return self._embedder
        self._loaded = True
        try:
            embedder = self._factory()
        except Exception as exc:  # noqa: BLE001 - a broken embedding model must not stop the server
            log.warning(f"{NO_MODEL} (it failed to load: {type(exc).__name__})")
            embedder = None
        if embedder is None:
            with self._lock:
                self._off = True
            return None
        version = embedder.model_version
        stored = stored_vectors(self.store, version)
        if self.index.model_version != version or self.index.count() != len(stored):
            log.info(
                "similar cases: rebuilding the index",
                extra={"backend": self.index.backend, "was": self.index.model_version, "model_version": version},
            )
            self.index.rebuild(version, embedder.dim, stored)
        with self._lock:
            self._embedder = embedder
        return embedder

    def embed_blocking(self, photo_id: int) -> bool:
        """Embed one photo (unless this model version already has); True when a new vector was stored."""
        embedder = self._prepare()
        if embedder is None:
            return False
        version = embedder.model_version
        if embedding_of(self.store, photo_id, version) is not None:
            return False
        sha256 = photo_file_sha256(self.store, photo_id)
        if sha256 is None or not self.store.files.exists(sha256):
            return False
        try:
            made = embedder.embed(decode_for_embedding(self.store.files.read(sha256)))
        except Exception as exc:  # noqa: BLE001 - one bad photo must not stop the others; ids only in the log
            log.warning("photo embedding failed", extra={"photo_id": photo_id, "error": type(exc).__name__})
            return False
        if made.model_version != version:
            log.error("embedder answered for another model version", extra={"photo_id": photo_id})
            return False
        if not save_embedding(self.store, photo_id, made.model_name, version, made.vector):
            return False
        try:
            self.index.add(photo_id, made.vector, version)
        except IndexVersionMismatch as exc:  # the stored vector stays; the next start's rebuild picks it up
            log.error("vector not indexed", extra={"photo_id": photo_id, "error": str(exc)})
        return True

    def _catch_up(self) -> None:
        try:
            self._embed_lacking()
        finally:
            with self._lock:
                self._catching_up = False

    def _embed_lacking(self) -> None:
        embedder = self._prepare()
        if embedder is None:
            return
        lacking = photos_lacking_embedding(self.store, embedder.model_version)
        if lacking:
            log.info(
                "similar cases: embedding photos",
                extra={"count": len(lacking), "model_version": embedder.model_version},
            )
        for done, photo_id in enumerate(lacking, start=1):
            self.embed_blocking(photo_id)
            if done % PROGRESS_EVERY == 0 or done == len(lacking):
                log.info("similar cases: embedded", extra={"done": done, "of": len(lacking)})

    # -- from any thread -------------------------------------------------------------------------------------------

    def _submit(self, job: Callable[[], object]) -> Future[None]:
        def run() -> None:
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - logged with ids only; the next start retries
                log.error("embedding job failed", extra={"error": type(exc).__name__})

        future = self._executor.submit(run)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def start(self) -> Future[None]:
        """Rebuild the index if needed and embed every photo lacking a vector of the current version."""
        with self._lock:
            self._catching_up = True
        return self._submit(self._catch_up)

    def after_analysis(self, photo_id: int) -> None:
        """The analysis runner's hook (on its thread): queue the photo; returns at once."""
        self._submit(lambda: self.embed_blocking(photo_id))

    def wait_idle(self, timeout_s: float | None = None) -> None:
        """Block until every queued job has run (tests, shutdown)."""
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            for future in pending:
                future.result(timeout=timeout_s)

    @property
    def model_version(self) -> str | None:
        with self._lock:
            return None if self._embedder is None else self._embedder.model_version

    def state(self) -> SimilarState:
        with self._lock:
            if self._off:
                return SimilarState.off
            if self._catching_up:
                return SimilarState.updating
            return SimilarState.starting if self._embedder is None else SimilarState.ready

    def status(self) -> SimilarStatus:
        """Blocking (two counts): call from a worker thread."""
        state = self.state()
        with self._lock:
            embedder = self._embedder
        total = embeddable_photo_count(self.store)
        embedded = self.index.count() if embedder is not None else 0
        messages = {
            SimilarState.starting: "similar cases are starting",
            SimilarState.updating: "similar cases are being updated",
            SimilarState.ready: "similar cases are up to date",
            SimilarState.off: NO_MODEL,
        }
        return SimilarStatus(
            state,
            None if embedder is None else embedder.model_version,
            embedded,
            total,
            self.index.backend,
            messages[state],
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.index.close()
