"""Video consult rooms: one row per call a GP opens on a case, with a hash of the patient's join key.

Revision ID: 0003_video_consults
Revises: 0002_case_export_keys
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_video_consults"
down_revision = "0002_case_export_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "video_consults",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("wound_cases.id"), nullable=False, index=True),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("room_id", sa.String(32), nullable=False, unique=True),
        sa.Column("patient_key_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("video_consults")
