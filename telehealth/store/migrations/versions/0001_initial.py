"""Initial telehealth schema: accounts, patients, invites, cases, photos, analyses, consults, reports, audit log.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        _ts("created_at"),
        sa.CheckConstraint("role IN ('patient', 'gp', 'surgeon', 'admin')", name="ck_users_role"),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), unique=True),
        sa.Column("gp_user_id", sa.Integer, sa.ForeignKey("users.id"), index=True),
        _ts("created_at"),
    )
    op.create_table(
        "invites",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
    )
    op.create_table(
        "wound_cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False, index=True),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        _ts("created_at"),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("label", sa.String(120)),
    )
    op.create_table(
        "photo_submissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("wound_cases.id"), nullable=False, index=True),
        sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        _ts("received_at"),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("byte_size", sa.Integer, nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(128)),
        sa.Column("file_state", sa.String(16), nullable=False, server_default="stored"),
        sa.UniqueConstraint("uploaded_by", "idempotency_key", name="uq_photo_idempotency"),
    )
    op.create_table(
        "analyses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("photo_id", sa.Integer, sa.ForeignKey("photo_submissions.id"), nullable=False, index=True),
        sa.Column("model_name", sa.String(120), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("evidence_path", sa.String(512)),
        _ts("created_at"),
    )
    op.create_table(
        "consults",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("wound_cases.id"), nullable=False, index=True),
        sa.Column("requested_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("surgeon_id", sa.Integer, sa.ForeignKey("users.id"), index=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="requested"),
        _ts("created_at"),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("wound_cases.id"), nullable=False, index=True),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "report_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        _ts("created_at"),
        _ts("signed_at", nullable=True),
        sa.Column("signed_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("amends_version_id", sa.Integer, sa.ForeignKey("report_versions.id")),
        sa.UniqueConstraint("report_id", "version", name="uq_report_version"),
        sa.CheckConstraint("status IN ('draft', 'signed')", name="ck_report_versions_status"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        _ts("at"),
        sa.Column("actor_id", sa.Integer),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("object_id", sa.Integer),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_actor_id", "audit_events", ["actor_id"])
    _create_guards()


# The two rules that must hold whatever code touches the database: the audit log is append-only and a signed
# report version is immutable. Triggers enforce them below the application.
_SQLITE_GUARDS = [
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER report_versions_signed_no_update BEFORE UPDATE ON report_versions
       WHEN OLD.status = 'signed'
       BEGIN SELECT RAISE(ABORT, 'a signed report version is immutable'); END""",
    """CREATE TRIGGER report_versions_signed_no_delete BEFORE DELETE ON report_versions
       WHEN OLD.status = 'signed'
       BEGIN SELECT RAISE(ABORT, 'a signed report version is immutable'); END""",
]

_POSTGRES_GUARDS = [
    """CREATE FUNCTION telehealth_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""",
    """CREATE FUNCTION telehealth_refuse_signed_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF OLD.status = 'signed' THEN RAISE EXCEPTION 'a signed report version is immutable'; END IF;
         IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
       FOR EACH ROW EXECUTE FUNCTION telehealth_refuse_change()""",
    """CREATE TRIGGER report_versions_signed_immutable BEFORE UPDATE OR DELETE ON report_versions
       FOR EACH ROW EXECUTE FUNCTION telehealth_refuse_signed_change()""",
]


def _create_guards() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE_GUARDS if dialect == "sqlite" else _POSTGRES_GUARDS if dialect == "postgresql" else []:
        op.execute(statement)


def _drop_guards() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in (
            "audit_events_no_update",
            "audit_events_no_delete",
            "report_versions_signed_no_update",
            "report_versions_signed_no_delete",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS report_versions_signed_immutable ON report_versions")
        op.execute("DROP FUNCTION IF EXISTS telehealth_refuse_change()")
        op.execute("DROP FUNCTION IF EXISTS telehealth_refuse_signed_change()")


def downgrade() -> None:
    _drop_guards()
    for table in (
        "audit_events",
        "report_versions",
        "reports",
        "consults",
        "analyses",
        "photo_submissions",
        "wound_cases",
        "invites",
        "patients",
        "users",
    ):
        op.drop_table(table)
