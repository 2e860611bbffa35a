"""Report versions: draft edits, immutable signed versions, amendments as new versions, all audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from telehealth.errors import Conflict, Forbidden, NotFound
from telehealth.records import Actor, ReportStatus, Role
from telehealth.store.reports import amend, edit_draft, sign, start_report
from telehealth.store.tables import AuditEventRow, ReportVersionRow


async def actor(world, who: str, role: Role) -> Actor:
    me = (await world.client.get("/api/me", headers=world.headers[who])).json()
    return Actor(me["id"], role)


async def test_sign_then_amend(world) -> None:
    store = world.services.store
    gp = await actor(world, "gp_a", Role.gp)
    draft = start_report(store, gp, world.case_ids["pat_a"], {"summary": "v1"})
    draft = edit_draft(store, gp, draft.id, {"summary": "v1 edited"})
    signed = sign(store, gp, draft.id)
    assert signed.status is ReportStatus.signed and signed.signed_at is not None
    with pytest.raises(Conflict, match="immutable"):
        edit_draft(store, gp, signed.id, {"summary": "sneaky"})
    with pytest.raises(Conflict, match="already signed"):
        sign(store, gp, signed.id)
    amended = amend(store, gp, signed.id, {"summary": "v2"})
    assert (amended.version, amended.status, amended.amends_version_id) == (2, ReportStatus.draft, signed.id)
    # Below the application too: the database refuses to change a signed row.
    with pytest.raises(DBAPIError, match="immutable"), store.db.session() as s:
        s.execute(update(ReportVersionRow).where(ReportVersionRow.id == signed.id).values(body={"x": 1}))
    with store.db.session() as s:
        assert s.get(ReportVersionRow, signed.id).body == {"summary": "v1 edited"}
        actions = [
            a.action for a in s.scalars(select(AuditEventRow).where(AuditEventRow.object_type == "report_version"))
        ]
    assert actions == ["create", "edit", "sign", "create"]


async def test_report_access(world) -> None:
    store = world.services.store
    gp_a, gp_b = await actor(world, "gp_a", Role.gp), await actor(world, "gp_b", Role.gp)
    patient = await actor(world, "pat_a", Role.patient)
    with pytest.raises(Forbidden):
        start_report(store, patient, world.case_ids["pat_a"], {})
    with pytest.raises(NotFound):
        start_report(store, gp_b, world.case_ids["pat_a"], {})
    draft = start_report(store, gp_a, world.case_ids["pat_a"], {})
    with pytest.raises(NotFound):
        sign(store, gp_b, draft.id)
