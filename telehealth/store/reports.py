"""Report versions: drafts change, a signed version never does, an amendment is a new version.

Store-level functions (telehealth/report_api.py serves them); the database triggers from the first migration back
the same rule up. Report-level helpers act on a report's latest version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import func, select

from perception.vlm.report import DRAFT_HEADER
from telehealth.errors import Conflict, Forbidden, NotFound
from telehealth.records import Actor, ReportStatus, Role, UserRecord, as_utc, utc_now
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.signed_pdfs import ReplacedVersion, SealedPdf, record_signed_pdf, replaced_version
from telehealth.store.tables import ReportRow, ReportVersionRow, UserRow
from telehealth.store.visibility import visible_case

_AUTHORS = frozenset({Role.gp, Role.surgeon, Role.admin})
_SIGNERS = frozenset({Role.gp, Role.admin})
SIGNED_IS_FINAL = "signed reports cannot change; amend instead"


@dataclass(frozen=True)
class ReportVersionRecord:
    id: int
    report_id: int
    version: int
    status: ReportStatus
    body: dict[str, Any]
    signed_at: datetime | None
    amends_version_id: int | None
    signed_by: int | None = None
    author_id: int | None = None
    created_at: datetime | None = None


def _record(row: ReportVersionRow) -> ReportVersionRecord:
    return ReportVersionRecord(
        row.id,
        row.report_id,
        row.version,
        ReportStatus(row.status),
        dict(row.body),
        as_utc(row.signed_at) if row.signed_at else None,
        row.amends_version_id,
        row.signed_by,
        row.author_id,
        as_utc(row.created_at) if row.created_at else None,
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
        row = ReportVersionRow(
            report_id=report.id,
            version=1,
            status=ReportStatus.draft.value,
            body=body,
            author_id=actor.user_id,
            created_at=utc_now(),
        )
        s.add(row)
        s.flush()
        record_audit(s, actor.user_id, AuditAction.create, "report_version", row.id)
        return _record(row)


def edit_draft(store: CaseStore, actor: Actor, version_id: int, body: dict[str, Any]) -> ReportVersionRecord:
    _require_author(actor)
    with store.db.session() as s:
        row = _visible_version(s, actor, version_id)
        if row.status != ReportStatus.draft.value:
            raise Conflict(f"{SIGNED_IS_FINAL} (a signed report version is immutable)")
        row.body = body
        record_audit(s, actor.user_id, AuditAction.edit, "report_version", row.id)
        return _record(row)


# Renders, PAdES-signs and stores the PDF of a version being signed (given the version it replaces, if any).
Seal = Callable[[ReportVersionRecord, ReplacedVersion | None], SealedPdf]


def sign(
    store: CaseStore, actor: Actor, version_id: int, zone: tzinfo = UTC, seal: Seal | None = None
) -> ReportVersionRecord:
    """Sign a draft: its body gains the note naming the signer and when (in the clinic's time `zone`).

    `seal` runs inside the signing transaction, so a version is signed exactly when its signed PDF is recorded: if
    sealing fails, the version stays a draft.
    """
    _require_author(actor)
    if actor.role not in _SIGNERS:
        raise Forbidden("only GPs and admins sign reports")
    with store.db.session() as s:
        row = _visible_version(s, actor, version_id)
        if row.status != ReportStatus.draft.value:
            raise Conflict("this report version is already signed")
        signer = s.get(UserRow, actor.user_id)
        now = utc_now()
        name = (signer.display_name or signer.email) if signer else f"user {actor.user_id}"
        row.body = signed_body(row.body, signed_note(name, now, zone))
        row.status, row.signed_by, row.signed_at = ReportStatus.signed.value, actor.user_id, now
        record = _record(row)
        if seal is not None:
            record_signed_pdf(s, row.id, seal(record, replaced_version(s, row)))
        record_audit(s, actor.user_id, AuditAction.sign, "report_version", row.id)
        return record


SIGNED_NOTE_START = "AI-assisted draft, reviewed and signed by"


def clinic_time(moment: datetime, zone: tzinfo) -> str:
    """A time as a report shows it: in the clinic's zone, to the minute, with the zone's name."""
    return moment.astimezone(zone).strftime("%d %B %Y, %H:%M %Z").lstrip("0")


def signed_note(signer: str, signed_at: datetime, zone: tzinfo) -> str:
    return f"{SIGNED_NOTE_START} {signer} on {clinic_time(signed_at, zone)}."


def signed_body(body: dict[str, Any], note: str) -> dict[str, Any]:
    """The body as signed: the 'AI draft, signature required' banner no longer applies, the provenance does."""
    text = body.get("text")
    if not isinstance(text, str):
        return body
    kept = [
        line for line in text.splitlines() if line.strip() != DRAFT_HEADER and not line.startswith("Status: ai_draft")
    ]
    return {**body, "text": "\n".join(kept).strip() + "\n\n" + note, "notice": note}


def amend(store: CaseStore, actor: Actor, version_id: int, body: dict[str, Any]) -> ReportVersionRecord:
    """A new draft version of the same report that names the signed version it amends."""
    _require_author(actor)
    with store.db.session() as s:
        signed = _visible_version(s, actor, version_id)
        if signed.status != ReportStatus.signed.value:
            raise Conflict("only a signed version is amended; edit the draft instead")
        latest = s.scalar(
            select(func.max(ReportVersionRow.version)).where(ReportVersionRow.report_id == signed.report_id)
        )
        row = ReportVersionRow(
            report_id=signed.report_id,
            version=(latest or 0) + 1,
            status=ReportStatus.draft.value,
            body=body,
            author_id=actor.user_id,
            created_at=utc_now(),
            amends_version_id=signed.id,
        )
        s.add(row)
        s.flush()
        record_audit(s, actor.user_id, AuditAction.create, "report_version", row.id)
        return _record(row)


# -- report level: the latest version of a report ---------------------------------------------------------------


@dataclass(frozen=True)
class ReportView:
    report_id: int
    case_id: int
    patient_id: int
    current: ReportVersionRecord  # the latest version the caller may read
    versions: list[ReportVersionRecord]


def _versions(s, report_id: int, signed_only: bool) -> list[ReportVersionRow]:  # noqa: ANN001 - Session
    query = select(ReportVersionRow).where(ReportVersionRow.report_id == report_id).order_by(ReportVersionRow.version)
    if signed_only:
        query = query.where(ReportVersionRow.status == ReportStatus.signed.value)
    return list(s.scalars(query).all())


def view_report(
    store: CaseStore,
    actor: Actor,
    report_id: int,
    audit: AuditAction | None = AuditAction.view,
    version: int | None = None,
) -> ReportView:
    """The report as the caller may read it: a patient only their own signed versions (no signed version: 404).

    `current` is the latest version, or the given `version` number. Audited (view, or export for the export
    endpoints) on the version handed out.
    """
    with store.db.session() as s:
        report = s.get(ReportRow, report_id)
        if report is None:
            raise NotFound(f"no report {report_id}")
        case = visible_case(s, actor, report.case_id)  # NotFound for another patient's report
        rows = _versions(s, report_id, signed_only=actor.role is Role.patient)
        if not rows:
            raise NotFound(f"no report {report_id}")
        chosen = rows[-1] if version is None else next((r for r in rows if r.version == version), None)
        if chosen is None:
            raise NotFound(f"report {report_id} has no version {version}")
        if audit is not None:
            record_audit(s, actor.user_id, audit, "report_version", chosen.id)
        return ReportView(report_id, report.case_id, case.patient_id, _record(chosen), [_record(r) for r in rows])


def latest_signed(view: ReportView) -> ReportVersionRecord | None:
    """The newest signed version among those the caller may read (an amendment in draft does not count)."""
    return next((v for v in reversed(view.versions) if v.status is ReportStatus.signed), None)


def latest_version_id(store: CaseStore, actor: Actor, report_id: int) -> int:
    """For edit/sign/amend by a clinician: the newest version's id (NotFound when the report is not visible)."""
    _require_author(actor)
    return view_report(store, actor, report_id, audit=None).current.id


def case_reports(store: CaseStore, actor: Actor, case_id: int) -> list[ReportView]:
    with store.db.session() as s:
        visible_case(s, actor, case_id)
        ids = list(s.scalars(select(ReportRow.id).where(ReportRow.case_id == case_id).order_by(ReportRow.id)).all())
    out = []
    for rid in ids:
        try:
            out.append(view_report(store, actor, rid))
        except NotFound:  # a patient's report with no signed version yet
            continue
    return out


def signer_record(store: CaseStore, user_id: int | None) -> UserRecord | None:
    """Who signed a version, for the exports that name them (the signer may read this; it is not audited)."""
    if user_id is None:
        return None
    with store.db.session() as s:
        user = s.get(UserRow, user_id)
        return None if user is None else UserRecord(user.id, user.email, Role(user.role), user.display_name)


def signer_name(store: CaseStore, user_id: int | None) -> str | None:
    """How reports name the signer: their display name, else their email."""
    record = signer_record(store, user_id)
    return None if record is None else record.shown_name
