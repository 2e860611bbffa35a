"""Signed report PDFs: one row per signed report version naming its PAdES-signed PDF (sha256, size, file, the
certificate that signed it). Append-only, as signed versions are: triggers refuse UPDATE and DELETE.

Versions signed before this revision have no row; their PDF is rendered unsigned, and an export that needs the signed
PDF asks for an amendment.

Revision ID: 0007_signed_report_pdfs
Revises: 0006_patient_identity
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_signed_report_pdfs"
down_revision = "0006_patient_identity"
branch_labels = None
depends_on = None

_SQLITE_GUARDS = [
    """CREATE TRIGGER signed_report_pdfs_no_update BEFORE UPDATE ON signed_report_pdfs
       BEGIN SELECT RAISE(ABORT, 'signed_report_pdfs is append-only'); END""",
    """CREATE TRIGGER signed_report_pdfs_no_delete BEFORE DELETE ON signed_report_pdfs
       BEGIN SELECT RAISE(ABORT, 'signed_report_pdfs is append-only'); END""",
]
# telehealth_refuse_change() is the first revision's append-only function (it names the table in its message).
_POSTGRES_GUARDS = [
    """CREATE TRIGGER signed_report_pdfs_append_only BEFORE UPDATE OR DELETE ON signed_report_pdfs
       FOR EACH ROW EXECUTE FUNCTION telehealth_refuse_change()""",
]


def upgrade() -> None:
    op.create_table(
        "signed_report_pdfs",
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("report_versions.id"), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(128), nullable=False),
        sa.Column("certificate_subject", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE_GUARDS if dialect == "sqlite" else _POSTGRES_GUARDS if dialect == "postgresql" else []:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS signed_report_pdfs_no_update")
        op.execute("DROP TRIGGER IF EXISTS signed_report_pdfs_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS signed_report_pdfs_append_only ON signed_report_pdfs")
    op.drop_table("signed_report_pdfs")
