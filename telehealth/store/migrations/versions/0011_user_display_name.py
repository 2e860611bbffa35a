"""A clinician's name as signed reports and FHIR show it ("Dr Jane Smith"); null: the email stands in.

Revision ID: 0011_user_display_name
Revises: 0010_clinic_options
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_user_display_name"
down_revision = "0010_clinic_options"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("display_name", sa.String(120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("display_name")
