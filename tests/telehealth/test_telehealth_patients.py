"""Patient records over HTTP: a GP adds a patient with name, date of birth and identifier, opens a case, invites the
patient (link and QR code), and lists patients with their latest photo, area and trend arrow. Bad input gets a
reason and saves nothing; another GP's patient is invisible."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select
from wound_photos import healing_jpeg
from wound_photos import traced_wound_services as services  # noqa: F401  (overrides conftest's)

from telehealth.patient_identity import nhs_number_is_valid
from telehealth.store.tables import AuditEventRow

ADA = {
    "full_name": "  Ada   Lovelace ",
    "birth_date": "1950-12-10",
    "identifier_kind": "mrn",
    "identifier_value": "MRN-0042",
}


async def add(world, gp: str = "gp_a", **changes: str):
    return await world.client.post("/api/patients", json={**ADA, **changes}, headers=world.headers[gp])


async def test_a_gp_adds_a_patient_and_only_their_clinicians_see_it(world) -> None:
    c = world.client
    r = await add(world)
    assert r.status_code == 201, r.text
    ada = r.json()
    assert (ada["full_name"], ada["birth_date"], ada["identifier_value"]) == ("Ada Lovelace", "1950-12-10", "MRN-0042")
    assert ada["has_account"] is False
    listed = (await c.get("/api/patients", headers=world.headers["gp_a"])).json()
    row = next(p for p in listed if p["id"] == ada["id"])
    assert row["cases"] == [] and row["latest_photo_id"] is None and row["trend_note"] == "no photos yet"
    assert ada["id"] not in {p["id"] for p in (await c.get("/api/patients", headers=world.headers["gp_b"])).json()}
    assert ada["id"] in {p["id"] for p in (await c.get("/api/patients", headers=world.headers["admin"])).json()}
    for who in ("gp_b", "surgeon", "pat_a"):
        got = await c.get(f"/api/patients/{ada['id']}", headers=world.headers[who])
        assert got.status_code in (403, 404), (who, got.text)
    before = _patient_views(world, ada["id"])
    assert (await c.get(f"/api/patients/{ada['id']}", headers=world.headers["gp_a"])).status_code == 200
    assert _patient_views(world, ada["id"]) == before + 1  # every view of identity is audited


def _patient_views(world, patient_id: int) -> int:
    with world.services.store.db.session() as s:
        rows = s.scalars(
            select(AuditEventRow).where(
                AuditEventRow.object_type == "patient",
                AuditEventRow.object_id == patient_id,
                AuditEventRow.action == "view",
            )
        ).all()
        return len(rows)


@pytest.mark.parametrize(
    ("changes", "status", "reason"),
    [
        ({"full_name": "   "}, 422, "name is required"),
        ({"full_name": "Ada\x07"}, 422, "control characters"),
        ({"birth_date": "2999-01-01"}, 422, "cannot be in the future"),
        ({"birth_date": "1850-01-01"}, 422, "not a plausible date of birth"),
        ({"birth_date": "10/12/1950"}, 422, "date"),
        ({"identifier_kind": "nhs_number", "identifier_value": "943 476 5918"}, 422, "check digit is wrong"),
        ({"identifier_kind": "nhs_number", "identifier_value": "12345"}, 422, "10 digits"),
        ({"identifier_value": "has spaces in it"}, 422, "MRN is 1 to 64"),
        ({"identifier_kind": "passport"}, 422, "mrn"),
    ],
)
async def test_bad_identity_is_refused_with_the_reason_and_nothing_saved(world, changes, status, reason) -> None:
    before = world.services.store.row_counts()
    r = await add(world, **changes)
    assert r.status_code == status, r.text
    assert reason in str(r.json()["detail"])
    assert world.services.store.row_counts() == before


async def test_an_identifier_already_used_is_refused_for_any_gp(world) -> None:
    assert (await add(world)).status_code == 201
    before = world.services.store.row_counts()
    for gp in ("gp_a", "gp_b"):
        r = await add(world, gp, full_name="Someone Else")
        assert r.status_code == 409, r.text
        assert "already recorded for another patient" in r.json()["detail"]
        assert "Ada" not in r.json()["detail"]  # who holds it is not said
    assert world.services.store.row_counts() == before
    # The same number of another kind is a different identifier.
    assert (await add(world, identifier_kind="nhs_number", identifier_value="943 476 5919")).status_code == 201


def test_nhs_number_check_digit() -> None:
    assert nhs_number_is_valid("9434765919")  # NHS Digital's published example
    assert not nhs_number_is_valid("9434765918")
    assert not nhs_number_is_valid("943476591")


async def test_a_correction_is_audited_and_cannot_take_another_patients_number(world) -> None:
    ada = (await add(world)).json()
    other = (await add(world, full_name="Charles Babbage", identifier_value="MRN-7")).json()
    c, gp = world.client, world.headers["gp_a"]
    r = await c.put(f"/api/patients/{ada['id']}", json={**ADA, "full_name": "Augusta Ada King"}, headers=gp)
    assert r.status_code == 200 and r.json()["full_name"] == "Augusta Ada King"
    r = await c.put(f"/api/patients/{other['id']}", json=ADA, headers=gp)
    assert r.status_code == 409
    assert (await c.put(f"/api/patients/{ada['id']}", json=ADA, headers=world.headers["gp_b"])).status_code == 404


async def test_case_with_site_type_and_onset_and_dates_checked_against_birth(world) -> None:
    c, gp = world.client, world.headers["gp_a"]
    ada = (await add(world)).json()
    body = {
        "patient_id": ada["id"],
        "label": "left heel",
        "wound_type": "diabetic_foot_ulcer",
        "onset_date": "2026-10-01",
    }
    r = await c.post("/api/cases", json=body, headers=gp)
    assert r.status_code == 201, r.text
    assert (r.json()["wound_type"], r.json()["onset_date"]) == ("diabetic_foot_ulcer", "2026-10-01")
    before = world.services.store.row_counts()
    r = await c.post("/api/cases", json={**body, "onset_date": "1940-01-01"}, headers=gp)
    assert r.status_code == 422 and "before the patient's date of birth (1950-12-10)" in r.json()["detail"]
    r = await c.post("/api/cases", json={**body, "wound_type": "scratch"}, headers=gp)
    assert r.status_code == 422 and "diabetic_foot_ulcer" in str(r.json()["detail"])
    assert world.services.store.row_counts() == before
    case_id = (await c.post("/api/cases", json=body, headers=gp)).json()["id"]
    photo = await c.post(
        f"/api/cases/{case_id}/photos", files={"photo": ("w.jpg", healing_jpeg(1.0), "image/jpeg")}, headers=gp
    )
    assert photo.status_code == 201, photo.text
    r = await c.put(f"/api/photos/{photo.json()['id']}/taken-at", json={"taken_at": "1949-05-01"}, headers=gp)
    assert r.status_code == 422 and "before the patient's date of birth (1950-12-10)" in r.json()["detail"]


async def test_invite_for_a_patient_gives_a_link_and_qr_and_links_the_account(world) -> None:
    c = world.client
    ada = (await add(world)).json()
    r = await c.post(
        f"/api/patients/{ada['id']}/invites", json={"email": "ada@mail.test"}, headers=world.headers["gp_a"]
    )
    assert r.status_code == 201, r.text
    invite = r.json()
    assert invite["patient_id"] == ada["id"] and "#invite=" in invite["invite_url"]
    prefix = "data:image/svg+xml;base64,"
    assert invite["qr_svg_data_url"].startswith(prefix)
    assert b"<svg" in base64.b64decode(invite["qr_svg_data_url"][len(prefix) :])
    token = invite["invite_url"].split("invite=")[1]
    accepted = await c.post(f"/api/invites/{token}/accept", json={"password": "correct horse battery"})
    assert accepted.status_code == 201, accepted.text
    c.cookies.clear()
    got = (await c.get(f"/api/patients/{ada['id']}", headers=world.headers["gp_a"])).json()
    assert got["has_account"] is True


async def test_an_invite_for_another_gps_patient_is_refused(world) -> None:
    ada = (await add(world)).json()
    before = world.services.store.row_counts()
    r = await world.client.post(
        f"/api/patients/{ada['id']}/invites", json={"email": "x@mail.test"}, headers=world.headers["gp_b"]
    )
    assert r.status_code == 404 and "among your patients" in r.json()["detail"]
    assert world.services.store.row_counts() == before


async def test_patients_list_shows_latest_area_and_trend_arrow(world) -> None:
    c, gp = world.client, world.headers["gp_a"]
    ada = (await add(world)).json()
    case_id = (await c.post("/api/cases", json={"patient_id": ada["id"], "label": "left heel"}, headers=gp)).json()[
        "id"
    ]
    for day, scale in (("2026-11-01", 1.0), ("2026-11-15", 0.7)):
        r = await c.post(
            f"/api/cases/{case_id}/photos", files={"photo": ("w.jpg", healing_jpeg(scale), "image/jpeg")}, headers=gp
        )
        assert r.status_code == 201, r.text
        assert (
            await c.put(f"/api/photos/{r.json()['id']}/taken-at", json={"taken_at": day}, headers=gp)
        ).status_code == 200
    await world.services.analyses.wait_idle()
    row = next(p for p in (await c.get("/api/patients", headers=gp)).json() if p["id"] == ada["id"])
    assert row["latest_photo_taken_at"].startswith("2026-11-15")
    assert row["latest_area_cm2"] is not None and row["latest_area_cm2"] > 0
    trend = row["trend"]
    assert trend["direction"] == "smaller" and trend["since"] == "2026-11-01"
    assert trend["change_pct"] == pytest.approx(100 * (0.7**2 - 1), abs=8)
    assert row["trend_note"] is None
