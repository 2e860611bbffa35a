"""Report versions: drafts change, a signed version never does, an amendment is a new version.

Store-level functions (no endpoints yet); the database triggers from the first migration back the same rule up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from telehealth.access import visible_case
from telehealth.audit import AuditAction, record_audit
from telehealth.case_store import CaseStore
from telehealth.errors import Conflict, Forbidden, NotFound
from telehealth.records import Actor
from telehealth.tables import ReportRow, ReportStatus, ReportVersionRow, Role, as_utc, utc_now

_AUTHORS = frozenset({Role.gp, Role.surgeon, Role.admin})


@dataclass(frozen=True)
class ReportVersionRecord:
    id: int
    report_id: int
    version: int
    status: ReportStatus
    body: dict[str, Any]
    signed_at: datetime | None
    amends_version_id: int | None


def _record(row: ReportVersionRow) -> ReportVersionRecord:
    return ReportVersionRecord(
        row.id, row.report_id, row.version, ReportStatus(row.status), dict(row.body),
        as_utc(row.signed_at) if row.signed_at else None, row.amends_version_id,
    )


def _require_author(actor: Actor) -> None:
    if actor.role not in _AUTHORS:
        raise Forbidden("only clinicians write reports")


def _visible_version(s, actor: Actor, version_id: int) -> ReportVersionRow:  # noqa: ANN001 - Session
    row = s.get(ReportVersionRow, version_id)
    report = None if row is None else s.get(ReportRow, row.report_id)
    if row is None or report is None:
        raise NotFound(f"no report version {version_id}")
    visible_case(s, actor, report.case_id)  # NotFound when the case is not the caller's
    return row


def start_report(store: CaseStore, actor: Actor, case_id: int, body: dict[str, Any]) -> ReportVersionRecord:
    _require_author(actor)
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        report = ReportRow(case_id=case_id, created_by=actor.user_id, created_at=utc_now())
        s.add(report)
        s.flush()
        row = ReportVersionRow(report_id=report.id, version=1, status=ReportStatus.draft.value, body=body,
                               author_id=actor.user_id, created_at=utc_now())
        s.add(row)
        s.flush()
        record_audit(s, actor.user_id, AuditAction.create, "report_version", row.id)
        return _record(row)


def edit_draft(store: CaseStore, actor: Actor, version_id: int, body: dict[str, Any]) -> ReportVersionRecord:
    _require_author(actor)
    with store.db.session() as s:
        row = _visible_version(s, actor, version_id)
        if row.status != ReportStatus.draft.value:
            raise Conflict("a signed report version is immutable: amend it instead")
        row.body = body
        record_audit(s, actor.user_id, AuditAction.edit, "report_version", row.id)
        return _record(row)


def sign(store: CaseStore, actor: Actor, version_id: int) -> ReportVersionRecord:
    _require_author(actor)
    with store.db.session() as s:
        row = _visible_version(s, actor, version_id)
        if row.status != ReportStatus.draft.value:
            raise Conflict("this report version is already signed")
        row.status, row.signed_by, row.signed_at = ReportStatus.signed.value, actor.user_id, utc_now()
        record_audit(s, actor.user_id, AuditAction.sign, "report_version", row.id)
        return _record(row)


def amend(store: CaseStore, actor: Actor, version_id: int, body: dict[str, Any]) -> ReportVersionRecord:
    """A new draft version of the same report that names the signed version it amends."""
    _require_author(actor)
    with store.db.session() as s:
        signed = _visible_version(s, actor, version_id)
        if signed.status != ReportStatus.signed.value:
            raise Conflict("only a signed version is amended; edit the draft instead")
        latest = s.scalar(select(func.max(ReportVersionRow.version)).where(ReportVersionRow.report_id == signed.report_id))
        row = ReportVersionRow(report_id=signed.report_id, version=(latest or 0) + 1, status=ReportStatus.draft.value,
                               body=body, author_id=actor.user_id, created_at=utc_now(), amends_version_id=signed.id)
        s.add(row)
        s.flush()
        record_audit(s, actor.user_id, AuditAction.create, "report_version", row.id)
        return _record(row)
