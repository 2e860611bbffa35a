"""Wound analysis of uploaded photos, evidence images and the healing trend over HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from telehealth_testutil import fast_settings, include_telehealth, jpeg_bytes
from wound_photos import scene_jpeg, true_area_cm2
from wound_photos import synthetic_wound_services as services  # noqa: F401  (overrides conftest's)

from scopecast.app import build_telehealth
from telehealth.analysis_worker import NOT_INSTALLED
from telehealth.store.tables import AnalysisRow, AuditEventRow


async def upload(world, who: str, data: bytes, case: str = "pat_a") -> int:
    r = await world.client.post(
        f"/api/cases/{world.case_ids[case]}/photos",
        files={"photo": ("w.jpg", data, "image/jpeg")},
        headers=world.headers[who],
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_photo_is_analysed_in_the_background(world) -> None:
    c = world.client
    photo_id = await upload(world, "pat_a", scene_jpeg(True))
    await world.services.analyses.wait_idle()
    r = await c.get(f"/api/photos/{photo_id}/analysis", headers=world.headers["gp_a"])
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == "analysed" and got["model"] == {"name": "synthetic-mask", "version": "1"}
    area = got["analysis"]["measurement"]["area_cm2"]
    assert area == pytest.approx(true_area_cm2(), rel=0.05)
    assert got["analysis"]["tissue"]["granulation"] > 0.8
    ev = await c.get(got["evidence_url"], headers=world.headers["pat_a"])
    assert (
        ev.status_code == 200
        and ev.content.startswith(b"\x89PNG")
        and ev.headers["cache-control"] == "private, no-store"
    )
    for other in ("gp_b", "pat_b", "surgeon"):
        assert (await c.get(f"/api/photos/{photo_id}/analysis", headers=world.headers[other])).status_code == 404
        assert (await c.get(f"/api/photos/{photo_id}/evidence.png", headers=world.headers[other])).status_code == 404
    with world.services.store.db.session() as s:
        row = s.scalars(select(AnalysisRow).where(AnalysisRow.photo_id == photo_id)).one()
        assert (row.model_name, row.model_version) == ("synthetic-mask", "1") and row.evidence_path
        actions = {(a.action, a.object_type) for a in s.scalars(select(AuditEventRow))}
    assert {("create", "analysis"), ("view", "analysis"), ("view", "evidence")} <= actions


async def test_trend_json_and_plots(world) -> None:
    c, gp = world.client, world.headers["gp_a"]
    earlier = await upload(world, "pat_a", scene_jpeg(False))
    await upload(world, "pat_a", scene_jpeg(True))
    await world.services.analyses.wait_idle()
    case_id = world.case_ids["pat_a"]
    same_day = (await c.get(f"/api/cases/{case_id}/trend", headers=gp)).json()
    # Two photos on one day are one visit: the measured one stands for it.
    assert len(same_day["visits"]) == 1 and same_day["visits"][0]["photo_ids"] == [earlier, earlier + 1]
    assert same_day["visits"][0]["area_cm2"] is not None and same_day["too_few_measured"].startswith("Too few")
    moved = await c.put(f"/api/photos/{earlier}/taken-at", json={"taken_at": "2026-11-01"}, headers=gp)
    assert moved.status_code == 200 and moved.json()["taken_at"].startswith("2026-11-01")
    trend = (await c.get(f"/api/cases/{case_id}/trend", headers=gp)).json()
    assert len(trend["visits"]) == 2 and trend["measured_visits"] == 1 and trend["unmeasured_visits"] == 1
    assert trend["visits"][0]["date"] == "2026-11-01"
    areas = [v["area_cm2"] for v in trend["visits"]]
    assert areas.count(None) == 1  # the photo without a marker is "not measured", never zero
    unmeasured = next(v for v in trend["visits"] if v["area_cm2"] is None)
    assert "no scale marker" in unmeasured["area_reason"] and unmeasured["tissue"] is None
    measured = next(v for v in trend["visits"] if v["area_cm2"] is not None)
    assert measured["tissue"]["granulation"] > 0.8
    png = await c.get(f"/api/cases/{case_id}/trend.png", headers=gp)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    svg = await c.get(f"/api/cases/{case_id}/trend.svg", headers=gp)
    assert svg.status_code == 200 and b"<svg" in svg.content
    assert (await c.get(f"/api/cases/{case_id}/trend", headers=world.headers["gp_b"])).status_code == 404
    assert (await c.get(f"/api/cases/{case_id}/trend.png", headers=world.headers["pat_b"])).status_code == 404


async def test_without_a_wound_model_the_upload_still_succeeds(tmp_path) -> None:
    import httpx
    from fastapi import FastAPI
    from telehealth_testutil import PASSWORD

    from telehealth.accounts import add_user

    services = build_telehealth(fast_settings(tmp_path / "t", wound_model_path=tmp_path / "absent.onnx"))
    app = FastAPI()
    include_telehealth(app, services)
    add_user(services.store, "pat@mail.test", PASSWORD, "patient")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        token = (await c.post("/api/login", json={"email": "pat@mail.test", "password": PASSWORD})).json()["token"]
        c.cookies.clear()
        h = {"Authorization": f"Bearer {token}"}
        case_id = (await c.post("/api/cases", json={}, headers=h)).json()["id"]
        r = await c.post(
            f"/api/cases/{case_id}/photos", files={"photo": ("w.jpg", jpeg_bytes(5), "image/jpeg")}, headers=h
        )
        assert r.status_code == 201, r.text
        await services.analyses.wait_idle()
        got = (await c.get(f"/api/photos/{r.json()['id']}/analysis", headers=h)).json()
        assert (got["status"], got["reason"], got["evidence_url"]) == ("not_analysed", NOT_INSTALLED, None)
        assert (await c.get(f"/api/photos/{r.json()['id']}/evidence.png", headers=h)).status_code == 404
        # Nothing to draft from, and clinicians only: a patient is refused before that.
        assert (await c.post(f"/api/cases/{case_id}/reports", headers=h)).status_code == 403
    await services.close()


async def test_photos_left_unanalysed_by_a_crash_are_analysed_on_resume(world) -> None:
    photo_id = await upload(world, "pat_a", scene_jpeg(True))
    await world.services.analyses.wait_idle()
    with world.services.store.db.session() as s:  # as if the server died before the analysis ran
        for row in s.scalars(select(AnalysisRow).where(AnalysisRow.photo_id == photo_id)):
            s.delete(row)
    assert world.services.analyses.resume_pending() == 1
    await world.services.analyses.wait_idle()
    got = (await world.client.get(f"/api/photos/{photo_id}/analysis", headers=world.headers["gp_a"])).json()
    assert got["status"] == "analysed"
    assert world.services.analyses.resume_pending() == 0, "nothing left to resume"


async def test_a_gp_corrects_a_photo_date_and_it_is_audited(world) -> None:
    c, h = world.client, world.headers
    photo = await upload(world, "pat_a", scene_jpeg(True))
    await world.services.analyses.wait_idle()
    url = f"/api/photos/{photo}/taken-at"
    case_url = f"/api/cases/{world.case_ids['pat_a']}"

    async def taken_at() -> str:
        return (await c.get(case_url, headers=h["gp_a"])).json()["photos"][0]["taken_at"]

    before, first_taken = world.services.store.row_counts(), await taken_at()
    future = await c.put(url, json={"taken_at": "2999-01-01"}, headers=h["gp_a"])
    assert (future.status_code, future.json()["detail"]) == (422, "a photo cannot be taken in the future: 2999-01-01")
    old = await c.put(url, json={"taken_at": "1850-05-05"}, headers=h["gp_a"])
    assert old.status_code == 422 and "not a plausible date" in old.json()["detail"]
    assert (await c.put(url, json={"taken_at": "not a date"}, headers=h["gp_a"])).status_code == 422
    assert (await c.put(url, json={"taken_at": "2026-11-20"}, headers=h["pat_a"])).status_code == 403
    assert (await c.put(url, json={"taken_at": "2026-11-20"}, headers=h["gp_b"])).status_code == 404
    # Nothing saved by a refused edit (the reads above audited as views, so count the other tables).
    after = world.services.store.row_counts()
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"
    }
    assert await taken_at() == first_taken
    ok = await c.put(url, json={"taken_at": "2026-11-20"}, headers=h["gp_a"])
    assert ok.status_code == 200 and ok.json()["taken_at"] == "2026-11-20T12:00:00Z"
    with world.services.store.db.session() as s:
        audit = s.scalars(select(AuditEventRow).where(AuditEventRow.object_type == "photo_taken_at")).all()
    assert [(a.action, a.object_id) for a in audit] == [("edit", photo)]
