"""The append-only audit trail: ids and verbs only, never free text, so it can be exported without redaction."""

from __future__ import annotations

import enum

from sqlalchemy.orm import Session

from telehealth.records import utc_now
from telehealth.store.tables import AuditEventRow


class AuditAction(str, enum.Enum):
    view = "view"
    create = "create"
    edit = "edit"
    sign = "sign"
    export = "export"
    login = "login"
    invite = "invite"
    accept_invite = "accept_invite"
    # Named for the call, not `join`: that would hide str.join on every member (the stored value stays "join").
    join_call = "join"
    end = "end"
    withdraw = "withdraw"
    start_recording = "start_recording"
    stop_recording = "stop_recording"
    delete = "delete"
    expire = "expire"  # removed by the retention sweep (actor null: the server)


def record_audit(
    session: Session, actor_id: int | None, action: AuditAction, object_type: str, object_id: int | None
) -> None:
    """Add an audit row to the caller's transaction: it commits exactly when the audited change does."""
    session.add(
        AuditEventRow(
            at=utc_now(), actor_id=actor_id, action=action.value, object_type=object_type, object_id=object_id
        )
    )
