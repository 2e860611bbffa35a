"""Ids at the API edge: every id a client sends is a whole number from 1 to 2^63-1, or a clear 422 naming the field.

Before, an id over 64 bits reached the database driver and came back as a 500 (OverflowError) from about ten
endpoints; these tests walk every route that takes an id, so a new route without the bounded type fails here.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from telehealth_testutil import telehealth_routes
from test_telehealth_consults import FakeRooms, rooms  # noqa: F401  (rooms mounts the consult routes with fake live rooms)

from telehealth.schemas import MAX_ROW_ID

BAD_PATH_IDS = ["99999999999999999999999", "-1", "0", "1e23", "1.0", "+5", " 5", "٣"]
BAD_BODY_IDS = [99999999999999999999999, -1, 0, 1e23, 5.0, True, "5x", [1]]


# A valid body for the write routes that require one, so what is tested is the id, not a missing field.
VALID_BODIES = {
    "/api/photos/{photo_id}/taken-at": {"taken_at": "2026-11-20"},
    "/api/patients/{patient_id}": {
        "full_name": "Ada Lovelace",
        "birth_date": "1950-12-10",
        "identifier_kind": "mrn",
        "identifier_value": "MRN-1",
    },
    "/api/patients/{patient_id}/invites": {"email": "ada@mail.test"},
    "/api/cases/{case_id}/recording-consents": {
        "purpose": "clinical_record",
        "patient_video": True,
        "patient_audio": False,
    },
}
# Routes only an admin may call: asked as an admin, so what is tested is the id, not the role.
ADMIN_ROUTES = {("DELETE", "/api/recordings/{recording_id}")}


def caller(method: str, template: str) -> str:
    return "admin" if (method, template) in ADMIN_ROUTES else "gp_a"


def body_for(method: str, template: str) -> dict:
    if method == "PUT" or template in VALID_BODIES:
        return {"json": VALID_BODIES.get(template, {})}
    return {}


def id_routes(services) -> list[tuple[str, str]]:
    """(method, path) of every telehealth route with an id in its path (the main and the consult router)."""
    found = []
    for route in [r for router in telehealth_routes(services, FakeRooms()) for r in router.routes]:
        if isinstance(route, APIRoute) and re.search(r"\{\w+_id\}", route.path):
            found.extend((method, route.path) for method in sorted(route.methods))
    return found


def test_every_id_route_is_covered(services) -> None:
    paths = {path for _m, path in id_routes(services)}
    # The route table itself: if one of these disappears or is renamed, this list needs a look.
    assert {
        "/api/cases/{case_id}",
        "/api/photos/{photo_id}",
        "/api/reports/{report_id}",
        "/api/consults/{consult_id}/end",
        "/api/cases/{case_id}/trend",
    } <= paths
    assert len(paths) >= 19


@pytest.mark.parametrize("bad", BAD_PATH_IDS)
async def test_out_of_range_path_ids_are_422_naming_the_field(world, rooms, bad) -> None:  # noqa: F811
    for method, template in id_routes(world.services):
        name = re.search(r"\{(\w+_id)\}", template).group(1)
        url = re.sub(r"\{\w+_id\}", bad, template)
        r = await world.client.request(
            method, url, headers=world.headers[caller(method, template)], **body_for(method, template)
        )
        assert r.status_code == 422, (method, url, r.status_code, r.text)
        detail = r.json()["detail"]
        assert any(d["loc"] == ["path", name] for d in detail), (method, url, detail)


async def test_largest_id_is_an_ordinary_not_found(world, rooms) -> None:  # noqa: F811
    """2^63-1 is a valid id that names nothing: a 404 (or a refusal before the lookup), never a 500 from the database."""
    for method, template in id_routes(world.services):
        url = re.sub(r"\{\w+_id\}", str(MAX_ROW_ID), template)
        r = await world.client.request(
            method, url, headers=world.headers[caller(method, template)], **body_for(method, template)
        )
        assert r.status_code in (400, 404, 409, 415), (method, url, r.status_code, r.text)


@pytest.mark.parametrize("bad", BAD_BODY_IDS, ids=repr)
async def test_out_of_range_body_ids_are_422(world, bad) -> None:
    before = world.services.store.row_counts()
    r = await world.client.post("/api/cases", json={"patient_id": bad}, headers=world.headers["gp_a"])
    assert r.status_code == 422, r.text
    assert any(d["loc"] == ["body", "patient_id"] for d in r.json()["detail"]), r.text
    assert world.services.store.row_counts() == before


async def test_largest_body_id_is_an_ordinary_not_found(world) -> None:
    r = await world.client.post("/api/cases", json={"patient_id": MAX_ROW_ID}, headers=world.headers["gp_a"])
    assert r.status_code == 404 and r.json()["detail"] == f"no patient {MAX_ROW_ID}"
