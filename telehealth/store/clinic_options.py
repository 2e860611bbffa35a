"""Clinic options an admin changes in the app; each change is audited. Blocking: run in a worker thread."""

from __future__ import annotations

from telehealth.errors import Forbidden
from telehealth.records import Actor, Role, utc_now
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.tables import ClinicOptionsRow

_ROW_ID = 1


def clinic_wide_similar_cases(store: CaseStore, default: bool) -> bool:
    """The admin's choice, else `default` (the SCOPECAST_TELEHEALTH_CLINIC_WIDE_SIMILAR_CASES setting)."""
    with store.db.session() as s:
        row = s.get(ClinicOptionsRow, _ROW_ID)
        return default if row is None else row.clinic_wide_similar_cases


def set_clinic_wide_similar_cases(store: CaseStore, actor: Actor, enabled: bool) -> bool:
    if actor.role is not Role.admin:
        raise Forbidden("only an admin changes clinic-wide similar cases")
    with store.db.session() as s:
        row = s.get(ClinicOptionsRow, _ROW_ID)
        if row is None:
            row = ClinicOptionsRow(id=_ROW_ID, clinic_wide_similar_cases=enabled, updated_by=actor.user_id)
            s.add(row)
        row.clinic_wide_similar_cases = enabled
        row.updated_by = actor.user_id
        row.updated_at = utc_now()
        record_audit(s, actor.user_id, AuditAction.edit, "clinic_wide_similar_cases", int(enabled))
        return enabled
