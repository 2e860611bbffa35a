"""DICOM: the study, series and instance UIDs kept per case, visit and photo (so a re-export gives the same UIDs), and
the outbox of instances waiting for the PACS (state, attempts, the last failure's reason, the next attempt).

Revision ID: 0008_dicom_outbox
Revises: 0007_signed_report_pdfs
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_dicom_outbox"
down_revision = "0007_signed_report_pdfs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dicom_studies",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("wound_cases.id"), primary_key=True),
        sa.Column("study_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dicom_series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("wound_cases.id"), nullable=False, index=True),
        sa.Column("visit_date", sa.Date, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("series_number", sa.Integer, nullable=False),
        sa.UniqueConstraint("case_id", "visit_date", "kind", name="uq_dicom_series_visit_kind"),
    )
    op.create_table(
        "dicom_instances",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("photo_id", sa.Integer, sa.ForeignKey("photo_submissions.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("series_id", sa.Integer, sa.ForeignKey("dicom_series.id"), nullable=False, index=True),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("instance_number", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("photo_id", "kind", name="uq_dicom_instance_photo_kind"),
    )
    op.create_table(
        "dicom_outbox",
        sa.Column("instance_id", sa.Integer, sa.ForeignKey("dicom_instances.id"), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("failure", sa.String(16), nullable=True),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("dicom_outbox")
    op.drop_table("dicom_instances")
    op.drop_table("dicom_series")
    op.drop_table("dicom_studies")
