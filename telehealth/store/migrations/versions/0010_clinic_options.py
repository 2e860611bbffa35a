"""Clinic options an admin sets in the app (first: clinic-wide similar cases), one row; audited on change.

Revision ID: 0010_clinic_options
Revises: 0009_photo_embeddings
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_clinic_options"
down_revision = "0009_photo_embeddings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clinic_options",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clinic_wide_similar_cases", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("clinic_options")
