"""When each photo was taken: the visit it belongs to (from the camera's EXIF date, else the upload time; a GP may
correct it). Rows from before this revision take their received time.

Revision ID: 0005_photo_taken_at
Revises: 0004_sessions
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_photo_taken_at"
down_revision = "0004_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("photo_submissions", sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE photo_submissions SET taken_at = received_at")


def downgrade() -> None:
    with op.batch_alter_table("photo_submissions") as batch:
        batch.drop_column("taken_at")
