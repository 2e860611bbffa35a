"""Who the patient is and what the wound is: the patient's name, date of birth and identifier (an MRN or NHS
number, unique per kind); a case's wound type and onset date beside its site (the existing label); where a photo
came from (a patient's upload or a clinician's capture); and a session's last request, for the idle timeout.

Rows from before this revision keep empty identity (the page asks the GP to fill it in) and count as uploads.

Revision ID: 0006_patient_identity
Revises: 0005_photo_taken_at
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_patient_identity"
down_revision = "0005_photo_taken_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("full_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("identifier_kind", sa.String(16), nullable=True))
        batch.add_column(sa.Column("identifier_value", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_patient_identifier", ["identifier_kind", "identifier_value"])
    with op.batch_alter_table("wound_cases") as batch:
        batch.add_column(sa.Column("wound_type", sa.String(32), nullable=True))
        batch.add_column(sa.Column("onset_date", sa.Date(), nullable=True))
    with op.batch_alter_table("photo_submissions") as batch:
        batch.add_column(sa.Column("source", sa.String(24), nullable=False, server_default="patient_upload"))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("last_seen_at")
    with op.batch_alter_table("photo_submissions") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("wound_cases") as batch:
        batch.drop_column("onset_date")
        batch.drop_column("wound_type")
    with op.batch_alter_table("patients") as batch:
        batch.drop_constraint("uq_patient_identifier", type_="unique")
        batch.drop_column("identifier_value")
        batch.drop_column("identifier_kind")
        batch.drop_column("birth_date")
        batch.drop_column("full_name")
