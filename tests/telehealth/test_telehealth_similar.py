"""Similar cases over the API: who sees what (a GP their own patients' earlier cases; clinic-wide, other patients
de-identified and audited; patients never), the outcome shown, and the index's states (empty store, no model, a new
model version being re-embedded)."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import numpy as np
import pytest
from similar_embedder import ColourHistogramEmbedder
from telehealth_testutil import PASSWORD, fast_settings, include_telehealth, jpeg_bytes
from wound_photos import healing_jpeg

from scopecast.app import build_telehealth
from telehealth.case_api import intake_limits
from telehealth.photo_intake import clean_photo
from telehealth.records import Actor, IdentifierKind, PatientIdentity, Role, utc_now
from telehealth.services import TelehealthServices
from telehealth.similar.embedding_runner import NO_MODEL, SimilarState
from telehealth.store.patients import update_patient
from telehealth.store.tables import AuditEventRow
from telehealth.wound.segmentation import ModelRef, WoundMask


def trace_red(rgb):  # type: ignore[no-untyped-def]
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    return WoundMask((r - g > 90) & (r - b > 80), ModelRef(name="red-trace", version="1"), score=1.0)


def similar_services(data_dir, db_url, embedder) -> TelehealthServices:  # type: ignore[no-untyped-def]
    return build_telehealth(
        fast_settings(data_dir, database_url=db_url),
        segmenter_factory=lambda: trace_red,
        embedder_factory=lambda: embedder,
    )


@pytest.fixture
def services(tmp_path, telehealth_db_url):  # type: ignore[no-untyped-def]
    made = similar_services(tmp_path / "telehealth", telehealth_db_url, ColourHistogramEmbedder())
    yield made
    made.similar.runner.close()
    made.store.close()


async def send(services: TelehealthServices, user_id: int, case_id: int, jpeg: bytes, days_ago: int | None = None):  # type: ignore[no-untyped-def]
    """A patient's photo, analysed and embedded; `days_ago` moves its visit back (as a GP's correction would)."""
    photo, _ = services.store.add_photo(
        Actor(user_id, Role.patient), case_id, clean_photo(jpeg, intake_limits(services.settings)), None
    )
    if days_ago is not None:
        with services.store.db.session() as s:
            from telehealth.store.tables import PhotoSubmissionRow

            s.get(PhotoSubmissionRow, photo.id).taken_at = utc_now() - timedelta(days=days_ago)
    await services.analyses.analyse(photo.id)
    await asyncio.to_thread(services.similar.runner.wait_idle, 30)
    return photo


async def clinic(world):  # type: ignore[no-untyped-def]
    """GP A's second patient (pat_c) with a case that halved in three weeks; GP B's pat_b with an older photo of a
    case whose label names the patient; pat_a's new photo, the query."""
    w, s = world, world.services
    s.similar.runner.start()
    c_user = await w.invite_patient("gp_a", "pat_c@mail.test")
    w.headers["pat_c"] = await w.login("pat_c@mail.test")
    r = await w.client.post("/api/cases", json={"label": "right heel"}, headers=w.headers["pat_c"])
    c_case = r.json()["id"]
    r = await w.client.post("/api/cases", json={"label": "Mrs Bexley's sacrum"}, headers=w.headers["pat_b"])
    b_case = r.json()["id"]
    b_user = (await w.client.get("/api/me", headers=w.headers["pat_b"])).json()["id"]
    a_user = (await w.client.get("/api/me", headers=w.headers["pat_a"])).json()["id"]
    update_patient(
        s.store,
        Actor((await w.client.get("/api/me", headers=w.headers["gp_b"])).json()["id"], Role.gp),
        w.patient_ids["pat_b"],
        PatientIdentity("Ada Bexley", utc_now().date().replace(year=1950), IdentifierKind.mrn, "MRN-778899"),
    )
    c_first = await send(s, c_user, c_case, healing_jpeg(1.0), days_ago=28)
    c_later = await send(s, c_user, c_case, healing_jpeg(0.6), days_ago=7)
    b_photo = await send(s, b_user, b_case, healing_jpeg(0.95), days_ago=20)
    query = await send(s, a_user, w.case_ids["pat_a"], healing_jpeg(0.9))
    return {
        "c_case": c_case,
        "c_first": c_first,
        "c_later": c_later,
        "b_case": b_case,
        "b_photo": b_photo,
        "query": query,
    }


def audits(services: TelehealthServices, object_type: str) -> list[int | None]:
    from sqlalchemy import select

    with services.store.db.session() as s:
        return list(s.scalars(select(AuditEventRow.object_id).where(AuditEventRow.object_type == object_type)))


async def test_a_gp_sees_own_patients_earlier_cases_only(world) -> None:
    made = await clinic(world)
    client, h = world.client, world.headers
    q = made["query"].id
    r = await client.get(f"/api/photos/{q}/similar?k=5", headers=h["gp_a"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["clinic_wide"] is False and body["model_version"] == "hist-1"
    # pat_b is GP B's patient: not shown. The query's own case is not a "similar case". One result per case.
    assert [x["case_id"] for x in body["results"]] == [made["c_case"]]
    hit = body["results"][0]
    assert hit["identified"] is True and hit["wound_site"] == "right heel"
    assert hit["photo_id"] in (made["c_first"].id, made["c_later"].id)
    assert hit["visit_date"] is not None and 0 < hit["score"] <= 1
    assert hit["measurements"]["area_cm2"] > 0
    assert hit["outcome"]["weeks_to_50pct_reduction"] == 3.0
    assert hit["outcome"]["summary"] == "50% smaller after 3.0 weeks"
    assert hit["outcome"]["weekly_area_change_pct"] < 0
    thumb = await client.get(hit["thumbnail_url"], headers=h["gp_a"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert audits(world.services, "similar_cases") == [q]
    assert audits(world.services, "similar_clinic_wide") == []

    # Admin sees every case, in full.
    r = await client.get(f"/api/photos/{q}/similar", headers=h["admin"])
    assert {x["case_id"] for x in r.json()["results"]} == {made["c_case"], made["b_case"]}
    assert all(x["identified"] for x in r.json()["results"])


async def test_who_may_not_ask(world) -> None:
    made = await clinic(world)
    client, h = world.client, world.headers
    q = made["query"].id
    r = await client.get(f"/api/photos/{q}/similar", headers=h["pat_a"])
    assert r.status_code == 403 and "role" in r.json()["detail"]  # not even their own photo: others' images
    r = await client.get(f"/api/photos/{q}/similar", headers=h["gp_b"])
    assert r.status_code == 404 and r.json()["detail"] == f"no photo {q}"  # not GP B's patient
    r = await client.get(f"/api/photos/{q}/similar", headers=h["surgeon"])
    assert r.status_code == 404  # not consulted on the case
    r = await client.get("/api/photos/987654/similar", headers=h["gp_a"])
    assert r.status_code == 404 and r.json()["detail"] == "no photo 987654"
    r = await client.get(f"/api/photos/{q}/similar?k=0", headers=h["gp_a"])
    assert r.status_code == 422 and "k" in r.text
    # GP B's photo through GP A's query: not one of its results.
    r = await client.get(f"/api/photos/{q}/similar/{made['b_photo'].id}/thumbnail", headers=h["gp_a"])
    assert r.status_code == 404
    r = await client.get("/api/similar/status", headers=h["pat_a"])
    assert r.status_code == 403


async def test_clinic_wide_results_are_deidentified_and_audited(world) -> None:
    made = await clinic(world)
    client, h = world.client, world.headers
    # Only an admin turns it on; the switch is audited and kept in the database.
    for who in ("gp_a", "surgeon", "pat_a"):
        refused = await client.put("/api/similar/clinic-wide", json={"enabled": True}, headers=h[who])
        assert refused.status_code == 403, (who, refused.text)
    on = await client.put("/api/similar/clinic-wide", json={"enabled": True}, headers=h["admin"])
    assert on.status_code == 200 and on.json() == {"clinic_wide": True}
    assert audits(world.services, "clinic_wide_similar_cases") == [1]
    q = made["query"].id
    r = await client.get(f"/api/photos/{q}/similar", headers=h["gp_a"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["clinic_wide"] is True
    by_identified = {x["identified"]: x for x in body["results"]}
    assert set(by_identified) == {True, False}
    other = by_identified[False]
    assert other["case_id"] is None and other["visit_date"] is None and other["wound_site"] is None
    assert other["days_before_query"] == 20 and other["day_of_case"] == 0
    assert other["measurements"]["area_cm2"] > 0 and other["outcome"]["summary"]
    for secret in ("Bexley", "Ada", "MRN-778899", "1950", "pat_b", "sacrum"):
        assert secret not in r.text
    thumb = await client.get(other["thumbnail_url"], headers=h["gp_a"])
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    assert audits(world.services, "similar_clinic_wide") == [q]
    assert audits(world.services, "similar_deidentified") == [made["b_case"]]
    assert audits(world.services, "similar_thumbnail") == [made["b_photo"].id]
    # Switched off again: the same thumbnail is refused like any photo the GP may not see.
    off = await client.put("/api/similar/clinic-wide", json={"enabled": False}, headers=h["admin"])
    assert off.status_code == 200 and off.json() == {"clinic_wide": False}
    r = await client.get(other["thumbnail_url"], headers=h["gp_a"])
    assert r.status_code == 404


async def test_empty_store_and_status(world) -> None:
    s, client, h = world.services, world.client, world.headers
    s.similar.runner.start()
    a_user = (await client.get("/api/me", headers=h["pat_a"])).json()["id"]
    only = await send(s, a_user, world.case_ids["pat_a"], jpeg_bytes(5))
    r = await client.get(f"/api/photos/{only.id}/similar", headers=h["gp_a"])
    assert r.json()["status"] == "ok" and r.json()["results"] == []
    assert r.json()["message"] == "no earlier photos of other cases to compare with yet"
    r = await client.get("/api/similar/status", headers=h["gp_a"])
    assert r.json() == {
        "state": "ready",
        "model_version": "hist-1",
        "embedded": 1,
        "total": 1,
        "backend": s.similar.runner.index.backend,
        "clinic_wide": False,
        "message": "similar cases are up to date",
    }


async def test_without_an_embedding_model_similar_cases_are_off(tmp_path, telehealth_db_url) -> None:
    import httpx
    from fastapi import FastAPI

    from telehealth.accounts import add_user

    made = similar_services(tmp_path / "off", telehealth_db_url, None)
    try:
        app = FastAPI()
        include_telehealth(app, made)
        gp = add_user(made.store, "gp@clinic.test", PASSWORD, Role.gp)
        await asyncio.to_thread(made.similar.runner.start().result, 30)
        assert made.similar.runner.state() is SimilarState.off
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            token = (await client.post("/api/login", json={"email": gp.email, "password": PASSWORD})).json()["token"]
            r = await client.get("/api/similar/status", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["state"] == "off" and r.json()["message"] == NO_MODEL
    finally:
        made.similar.runner.close()
        made.store.close()


async def test_a_new_model_version_re_embeds_and_says_so_meanwhile(tmp_path, world) -> None:
    made = await clinic(world)
    old = world.services
    data_dir, db_url = old.settings.data_dir, old.settings.database_url
    old.similar.runner.close()
    gate = threading.Event()
    embedder = ColourHistogramEmbedder("hist-2", gate=gate)
    new = similar_services(data_dir, db_url, embedder)
    try:
        new.similar.runner.start()
        gp_a = Actor((await world.client.get("/api/me", headers=world.headers["gp_a"])).json()["id"], Role.gp)
        answer = await asyncio.to_thread(new.similar.find, gp_a, made["query"].id, 5)
        assert answer.status.value == "updating" and answer.message == "similar cases are being updated"
        assert answer.results == []
        # The status names the version being built once the worker has loaded it (the index rebuild comes first,
        # and under load it can outlast the request above): wait for the first gated embed.
        assert await asyncio.to_thread(embedder.embedding_started.wait, 30)
        status = await asyncio.to_thread(new.similar.runner.status)
        assert status.state is SimilarState.updating and status.model_version == "hist-2" and status.total == 4
        assert status.embedded == 0
        gate.set()
        await asyncio.to_thread(new.similar.runner.wait_idle, 30)
        status = await asyncio.to_thread(new.similar.runner.status)
        assert (status.state, status.embedded, status.total) == (SimilarState.ready, 4, 4)
        assert new.similar.runner.index.model_version == "hist-2" and embedder.calls == 4
        answer = await asyncio.to_thread(new.similar.find, gp_a, made["query"].id, 5)
        assert answer.status.value == "ok" and [x.case_id for x in answer.results] == [made["c_case"]]
    finally:
        gate.set()
        new.similar.runner.close()
        new.store.close()


def test_the_default_embedder_is_off_without_a_wound_model(caplog, tmp_path) -> None:
    from telehealth.similar.embedding_runner import onnx_embedder_factory

    with caplog.at_level("WARNING"):
        assert onnx_embedder_factory(tmp_path / "absent.onnx")() is None
    assert "similar cases off: no embedding model" in caplog.text and "absent.onnx" in caplog.text


def test_the_default_embedder_is_the_shipped_wound_models() -> None:
    """Without a test embedder, similar cases run on the wound model's own embedding output (perception.embedder)."""
    import numpy as np

    from telehealth.similar.embedding_runner import onnx_embedder_factory
    from tests.telehealth.wound_photos import scene

    embedder = onnx_embedder_factory(None)()
    assert embedder is not None
    assert embedder.model_version.startswith("wound-") and "+emb" in embedder.model_version
    made = embedder.embed(scene(True).rgb)
    assert made.vector.shape == (embedder.dim,) and abs(float(np.linalg.norm(made.vector)) - 1.0) < 1e-4
