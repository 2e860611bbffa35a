"""Similar cases: each photo's image embedding per model version, the table the vector index is built from.

The index itself (sqlite-vec's vec0 table, or the in-process one) is derived from these rows and is not part of the
schema: it is rebuilt whenever the embedding model's version changes.

Revision ID: 0009_photo_embeddings
Revises: 0008_dicom_outbox
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_photo_embeddings"
down_revision = "0008_dicom_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photo_embeddings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("photo_id", sa.Integer, sa.ForeignKey("photo_submissions.id"), nullable=False, index=True),
        sa.Column("model_name", sa.String(120), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False, index=True),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("photo_id", "model_version", name="uq_photo_embedding_version"),
    )


def downgrade() -> None:
    op.drop_table("photo_embeddings")
