"""Per-case date shift and pseudonym for de-identified exports.

Revision ID: 0002_case_export_keys
Revises: 0001_initial
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_case_export_keys"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_export_keys",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("wound_cases.id"), primary_key=True),
        sa.Column("shift_days", sa.Integer, nullable=False),
        sa.Column("pseudonym", sa.String(32), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("case_export_keys")
