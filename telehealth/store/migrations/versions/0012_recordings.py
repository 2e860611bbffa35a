"""Recording consent on a case, and the recordings made under it.

Revision ID: 0012_recordings
Revises: 0011_user_display_name
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_recordings"
down_revision = "0011_user_display_name"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_consents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("wound_cases.id"), nullable=False, index=True),
        sa.Column("representative_name", sa.String(200), nullable=True),
        sa.Column("recorded_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("patient_video", sa.Boolean(), nullable=False),
        sa.Column("patient_audio", sa.Boolean(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
    )
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("wound_cases.id"), nullable=False, index=True),
        sa.Column("consent_id", sa.Integer(), sa.ForeignKey("recording_consents.id"), nullable=False),
        sa.Column("started_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("video_file", sa.String(128), nullable=False),
        sa.Column("findings_file", sa.String(128), nullable=False),
        sa.Column("has_audio", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("frames", sa.Integer(), nullable=True),
        sa.Column("end_reason", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("recordings")
    op.drop_table("recording_consents")
