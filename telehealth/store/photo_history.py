"""What a patient sees of what they sent: each photo's case, when it was taken and received, and whether the
clinic has reviewed it (a report on its case signed after it arrived). No ids or fingerprints leave for patients;
the route maps these to what the page shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from telehealth.records import Actor, ReportStatus, as_utc
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.tables import PhotoSubmissionRow, ReportRow, ReportVersionRow, WoundCaseRow
from telehealth.store.visibility import visible_cases


@dataclass(frozen=True)
class SentPhoto:
    photo_id: int  # for the thumbnail URL only; the page does not print it
    case_label: str | None
    taken_at: datetime
    received_at: datetime
    reviewed_at: datetime | None


def photo_history(store: CaseStore, actor: Actor, limit: int = 50) -> list[SentPhoto]:
    """The newest photos of the actor's visible cases, newest first; audited as one view per case shown."""
    with store.db.session() as s:
        cases = {c.id: c for c in s.scalars(visible_cases(actor)).all()}
        if not cases:
            return []
        photos = s.scalars(
            select(PhotoSubmissionRow)
            .where(PhotoSubmissionRow.case_id.in_(cases))
            .order_by(PhotoSubmissionRow.received_at.desc(), PhotoSubmissionRow.id.desc())
            .limit(limit)
        ).all()
        signed = s.execute(
            select(ReportRow.case_id, ReportVersionRow.signed_at)
            .join(ReportVersionRow, ReportVersionRow.report_id == ReportRow.id)
            .where(ReportRow.case_id.in_(cases), ReportVersionRow.status == ReportStatus.signed.value)
        ).all()
        signings: dict[int, list[datetime]] = {}
        for case_id, signed_at in signed:
            if signed_at is not None:
                signings.setdefault(case_id, []).append(as_utc(signed_at))
        for case_id in {p.case_id for p in photos}:
            record_audit(s, actor.user_id, AuditAction.view, "photo_history", case_id)
        out = []
        for p in photos:
            received = as_utc(p.received_at)
            after = [t for t in signings.get(p.case_id, []) if t >= received]
            case: WoundCaseRow = cases[p.case_id]
            out.append(
                SentPhoto(
                    photo_id=p.id,
                    case_label=case.label,
                    taken_at=received if p.taken_at is None else as_utc(p.taken_at),
                    received_at=received,
                    reviewed_at=min(after) if after else None,
                )
            )
        return out
