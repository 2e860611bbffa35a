"""De-identified export of a case: no names, emails, labels or free text; every date shifted by a per-case offset.

The offset and the case's pseudonym are random, drawn once per case and kept in `case_export_keys` (never sent), so
repeated exports of one case line up with each other but not with the real calendar. Blocking: use a worker thread.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from telehealth.records import Actor, ReportStatus, as_utc, utc_now
from telehealth.store.analyses import case_analyses
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.tables import CaseExportKeyRow, ReportRow, ReportVersionRow
from telehealth.store.visibility import visible_case
from telehealth.wound.models import WoundAssessment


def _export_key(s: Session, case_id: int) -> CaseExportKeyRow:
    key = s.get(CaseExportKeyRow, case_id)
    if key is None:
        days = secrets.choice([-1, 1]) * (30 + secrets.randbelow(336))  # 30..365 days either way
        key = CaseExportKeyRow(case_id=case_id, shift_days=days, pseudonym=secrets.token_hex(8), created_at=utc_now())
        s.add(key)
        s.flush()
    return key


def _shift(value: datetime | None, days: int) -> str | None:
    return None if value is None else (as_utc(value) + timedelta(days=days)).isoformat()


def _analysis(assessment: WoundAssessment | None, days: int) -> dict[str, Any] | None:
    """Every field of an assessment is a number, a status or fixed method text (nothing typed by a person); only
    its time identifies, and it is shifted like every other date of the case."""
    if assessment is None:
        return None
    out = assessment.model_dump(mode="json")
    out["analysed_at"] = _shift(assessment.analysed_at, days)
    return out


def deidentified_case(store: CaseStore, actor: Actor, case_id: int) -> dict[str, Any]:
    with store.db.session() as s:
        case = visible_case(s, actor, case_id)
        key = _export_key(s, case_id)
        days, pseudonym, created, status = key.shift_days, key.pseudonym, case.created_at, case.status
        versions = (
            s.execute(
                select(ReportVersionRow)
                .join(ReportRow, ReportRow.id == ReportVersionRow.report_id)
                .where(ReportRow.case_id == case_id, ReportVersionRow.status == ReportStatus.signed.value)
                .order_by(ReportVersionRow.id)
            )
            .scalars()
            .all()
        )
        reports = [
            {
                "version": v.version,
                "signed_at": _shift(v.signed_at, days),
                "measurements": (v.body or {}).get("measurements") or {},
            }
            for v in versions
        ]
        record_audit(s, actor.user_id, AuditAction.export, "wound_case", case_id)
    photos = []
    for photo, analysis in case_analyses(store, actor, case_id, audit_as="export_photos"):
        photos.append(
            {
                "sha256": photo.sha256,
                "received_at": _shift(photo.received_at, days),
                "width": photo.width,
                "height": photo.height,
                "media_type": photo.media_type,
                "analysis_status": None if analysis is None else analysis.status,
                "analysis": None if analysis is None else _analysis(analysis.assessment, days),
            }
        )
    return {
        "deidentified": True,
        "case": {"pseudonym": pseudonym, "status": status, "created_at": _shift(created, days)},
        "photos": photos,
        "signed_reports": reports,
        "notes": [
            "dates are shifted by a random per-case offset kept on the server; intervals between dates are true",
            "names, emails, dates of birth, case labels and report free text are not exported",
            "photo hashes identify the stored image files; the images themselves are not included",
        ],
    }
