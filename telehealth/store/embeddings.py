"""Photo embeddings as stored: one row per photo and model version (float32 bytes), the similar-cases index's source
of truth. Blocking: call from a worker thread."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from telehealth.records import FileState, utc_now
from telehealth.store.cases import CaseStore
from telehealth.store.tables import PhotoEmbeddingRow, PhotoSubmissionRow

Vector = npt.NDArray[np.float32]


def vector_bytes(vector: Vector) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes, dim: int) -> Vector:
    vector = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if vector.shape != (dim,):
        raise ValueError(f"stored embedding has {vector.shape[0]} values, its row says {dim}")
    return vector


def save_embedding(store: CaseStore, photo_id: int, model_name: str, model_version: str, vector: Vector) -> bool:
    """Keep a photo's embedding; False when this model version had already embedded it (the first one stays)."""
    try:
        with store.db.session() as s:
            exists = s.scalars(
                select(PhotoEmbeddingRow.id).where(
                    PhotoEmbeddingRow.photo_id == photo_id, PhotoEmbeddingRow.model_version == model_version
                )
            ).first()
            if exists is not None:
                return False
            s.add(
                PhotoEmbeddingRow(
                    photo_id=photo_id,
                    model_name=model_name[:120],
                    model_version=model_version[:64],
                    dim=int(vector.shape[0]),
                    vector=vector_bytes(vector),
                    created_at=utc_now(),
                )
            )
    except IntegrityError:  # the start-up re-embed and a fresh analysis raced for one photo: one row is enough
        return False
    return True


def stored_vectors(store: CaseStore, model_version: str) -> list[tuple[int, Vector]]:
    """Every stored photo's vector of this model version, by photo id (what the index is rebuilt from)."""
    with store.db.session() as s:
        rows = s.execute(
            select(PhotoEmbeddingRow.photo_id, PhotoEmbeddingRow.vector, PhotoEmbeddingRow.dim)
            .where(PhotoEmbeddingRow.model_version == model_version)
            .order_by(PhotoEmbeddingRow.photo_id)
        ).all()
    return [(photo_id, vector_from_bytes(data, dim)) for photo_id, data, dim in rows]


def embedding_of(store: CaseStore, photo_id: int, model_version: str) -> Vector | None:
    with store.db.session() as s:
        row = s.execute(
            select(PhotoEmbeddingRow.vector, PhotoEmbeddingRow.dim).where(
                PhotoEmbeddingRow.photo_id == photo_id, PhotoEmbeddingRow.model_version == model_version
            )
        ).first()
    return None if row is None else vector_from_bytes(row[0], row[1])


def photos_lacking_embedding(store: CaseStore, model_version: str) -> list[int]:
    """Stored photos (their file present) with no vector of this model version, oldest first."""
    with store.db.session() as s:
        done = select(PhotoEmbeddingRow.photo_id).where(PhotoEmbeddingRow.model_version == model_version)
        return list(
            s.scalars(
                select(PhotoSubmissionRow.id)
                .where(PhotoSubmissionRow.file_state == FileState.stored.value, PhotoSubmissionRow.id.not_in(done))
                .order_by(PhotoSubmissionRow.id)
            )
        )


def embeddable_photo_count(store: CaseStore) -> int:
    with store.db.session() as s:
        query = select(func.count()).where(PhotoSubmissionRow.file_state == FileState.stored.value)
        return s.scalar(query.select_from(PhotoSubmissionRow)) or 0


def photo_file_sha256(store: CaseStore, photo_id: int) -> str | None:
    """The stored file of a photo to embed; None for an unknown photo or one whose file is not stored."""
    with store.db.session() as s:
        row = s.get(PhotoSubmissionRow, photo_id)
        if row is None or row.file_state != FileState.stored.value:
            return None
        return row.sha256
