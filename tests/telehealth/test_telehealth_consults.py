"""Video consults over HTTP: who may open, list, join, capture and end; with the live rooms replaced by a fake."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select, update
from wound_photos import scene_jpeg, true_area_cm2
from wound_photos import synthetic_wound_services as services  # noqa: F401  (overrides conftest's)

from telehealth.records import utc_now
from telehealth.store.consults import JoinRefused, authorize_join
from telehealth.store.tables import AuditEventRow, VideoConsultRow


class FakeRooms:
    """Stands in for stream.rooms.ConsultRooms: a patient frame to hand out, and a record of hang-ups."""

    def __init__(self) -> None:
        self.frame: bytes | None = scene_jpeg(with_marker=True)
        self.closed: list[str] = []

    def presence(self, room_id: str) -> dict[str, bool]:
        return {"clinician": False, "patient": self.frame is not None}

    async def close_room(self, room_id: str) -> None:
        self.closed.append(room_id)

    async def capture_patient_jpeg(self, room_id: str) -> bytes | None:
        return self.frame


@pytest.fixture
def rooms(services, app) -> FakeRooms:
    fake = FakeRooms()
    from scopecast.app import consult_routes

    app.include_router(consult_routes(services, fake))
    return fake


async def open_consult(world, who: str = "gp_a", case: str = "pat_a") -> dict:
    r = await world.client.post(f"/api/cases/{world.case_ids[case]}/consults", headers=world.headers[who])
    assert r.status_code == 201, r.text
    return r.json()


def join(world, room_id: str, credential: str) -> str:
    side, _record = authorize_join(world.services.store, world.services.auth.tokens, room_id, credential)
    return side


def bearer(world, who: str) -> str:
    return world.headers[who]["Authorization"].split(" ", 1)[1]


async def test_gp_opens_a_consult_and_both_sides_can_join(world, rooms) -> None:
    made = await open_consult(world)
    assert made["state"] == "open" and made["case_id"] == world.case_ids["pat_a"]
    assert made["clinician_url"] == f"/consult#consult={made['id']}&room={made['room_id']}"
    key = made["patient_url"].split("key=")[1]
    assert made["patient_url"].startswith(f"/consult#room={made['room_id']}&key=")

    assert join(world, made["room_id"], key) == "patient"
    assert join(world, made["room_id"], bearer(world, "pat_a")) == "patient"  # a signed-in patient needs no key
    assert join(world, made["room_id"], bearer(world, "gp_a")) == "clinician"
    assert join(world, made["room_id"], bearer(world, "admin")) == "clinician"

    # The key is shown once: listing consults never repeats it; the patient can list their own case's consults.
    listed = await world.client.get(f"/api/cases/{world.case_ids['pat_a']}/consults", headers=world.headers["pat_a"])
    assert listed.status_code == 200 and [c["patient_url"] for c in listed.json()] == [None]
    with world.services.store.db.session() as s:
        row = s.scalars(select(VideoConsultRow)).one()
        assert key not in (row.patient_key_sha256, row.room_id)


@pytest.mark.parametrize(
    ("credential_of", "reason"),
    [
        ("gp_b", "you are not a participant of this consult"),
        ("pat_b", "you are not a participant of this consult"),
        ("surgeon", "you are not a participant of this consult"),
        ("garbage", "invalid join key or session"),
    ],
)
async def test_joins_refused_with_the_reason(world, rooms, credential_of: str, reason: str) -> None:
    made = await open_consult(world)
    credential = "not-a-key-not-a-token" if credential_of == "garbage" else bearer(world, credential_of)
    with pytest.raises(JoinRefused, match=reason):
        join(world, made["room_id"], credential)


async def test_unknown_ended_and_expired_rooms_refuse_joins(world, rooms) -> None:
    with pytest.raises(JoinRefused, match="no such consult"):
        join(world, "no-such-room-id", bearer(world, "gp_a"))
    made = await open_consult(world)
    key = made["patient_url"].split("key=")[1]
    with world.services.store.db.session() as s:
        s.execute(update(VideoConsultRow).values(expires_at=utc_now() - timedelta(seconds=1)))
    with pytest.raises(JoinRefused, match="expired"):
        join(world, made["room_id"], key)

    second = await open_consult(world)
    ended = await world.client.post(f"/api/consults/{second['id']}/end", headers=world.headers["gp_a"])
    assert ended.status_code == 200 and ended.json()["state"] == "ended"
    assert rooms.closed == [second["room_id"]], "ending a consult must hang up the live call"
    with pytest.raises(JoinRefused, match="has ended"):
        join(world, second["room_id"], second["patient_url"].split("key=")[1])
    capture = await world.client.post(f"/api/consults/{second['id']}/capture", headers=world.headers["gp_a"])
    assert (capture.status_code, capture.json()["detail"]) == (409, "this consult has ended")


async def test_who_may_open_end_and_capture(world, rooms) -> None:
    case = world.case_ids["pat_a"]
    for who, status in (("pat_a", 403), ("surgeon", 403), ("gp_b", 404)):
        r = await world.client.post(f"/api/cases/{case}/consults", headers=world.headers[who])
        assert r.status_code == status, (who, r.text)
    assert (await world.client.post("/api/cases/9999/consults", headers=world.headers["gp_a"])).status_code == 404
    assert (await world.client.post(f"/api/cases/{case}/consults")).status_code == 401
    made = await open_consult(world)
    for who, status in (("pat_a", 403), ("gp_b", 404)):
        for action in ("capture", "end"):
            r = await world.client.post(f"/api/consults/{made['id']}/{action}", headers=world.headers[who])
            assert r.status_code == status, (who, action, r.text)
    assert (await world.client.post("/api/consults/9999/end", headers=world.headers["gp_a"])).status_code == 404
    assert rooms.closed == []
    r = await world.client.get(f"/api/cases/{case}/consults", headers=world.headers["pat_b"])
    assert r.status_code == 404


async def test_capture_stores_the_patient_frame_in_the_case_and_analyses_it(world, rooms) -> None:
    made = await open_consult(world)
    r = await world.client.post(f"/api/consults/{made['id']}/capture", headers=world.headers["gp_a"])
    assert r.status_code == 201, r.text
    receipt = r.json()
    case = await world.client.get(f"/api/cases/{world.case_ids['pat_a']}", headers=world.headers["pat_a"])
    assert [p["id"] for p in case.json()["photos"]] == [receipt["id"]], (
        "the patient sees the captured photo in their case"
    )
    await world.services.analyses.wait_idle()
    analysis = (await world.client.get(f"/api/photos/{receipt['id']}/analysis", headers=world.headers["gp_a"])).json()
    assert analysis["status"] == "analysed"
    assert analysis["analysis"]["measurement"]["area_cm2"] == pytest.approx(true_area_cm2(), rel=0.03)

    rooms.frame = None  # the patient is not connected
    r = await world.client.post(f"/api/consults/{made['id']}/capture", headers=world.headers["gp_a"])
    assert r.status_code == 409 and "patient is not connected" in r.json()["detail"]

    dark = io.BytesIO()
    Image.new("RGB", (320, 240), (5, 5, 5)).save(dark, "JPEG")
    rooms.frame = dark.getvalue()  # a camera pointed at nothing: the same checks as an upload
    r = await world.client.post(f"/api/consults/{made['id']}/capture", headers=world.headers["gp_a"])
    assert (r.status_code, r.json()["detail"]) == (422, "too dark, please retake")


async def test_consult_actions_are_audited(world, rooms) -> None:
    made = await open_consult(world)
    join(world, made["room_id"], made["patient_url"].split("key=")[1])
    join(world, made["room_id"], bearer(world, "gp_a"))
    await world.client.post(f"/api/consults/{made['id']}/end", headers=world.headers["gp_a"])
    with world.services.store.db.session() as s:
        rows = s.scalars(
            select(AuditEventRow).where(AuditEventRow.object_type == "video_consult").order_by(AuditEventRow.id)
        ).all()
        actions = [(a.action, a.actor_id) for a in rows]
    patient_user = (await world.client.get("/api/me", headers=world.headers["pat_a"])).json()["id"]
    gp_user = (await world.client.get("/api/me", headers=world.headers["gp_a"])).json()["id"]
    assert actions == [("create", gp_user), ("join", patient_user), ("join", gp_user), ("end", gp_user)]


async def test_consult_page_is_served(world, rooms) -> None:
    r = await world.client.get("/consult")
    assert r.status_code == 200 and "video consult" in r.text
    js = await world.client.get("/telehealth/static/consult.js")
    assert js.status_code == 200 and "join-ticket" in js.text


async def test_a_join_ticket_lets_the_call_window_join_its_own_room_only(world, rooms, monkeypatch) -> None:
    first, second = await open_consult(world), await open_consult(world)
    r = await world.client.post(f"/api/consults/{first['id']}/join-ticket", headers=world.headers["gp_a"])
    assert r.status_code == 200, r.text
    ticket = r.json()["credential"]
    assert ticket != bearer(world, "gp_a")  # the session token itself never reaches the call window
    assert join(world, first["room_id"], ticket) == "clinician"
    with pytest.raises(JoinRefused, match="this join ticket is for another consult"):
        join(world, second["room_id"], ticket)
    # Only the consult's clinicians get one.
    for who in ("gp_b", "pat_a", "surgeon"):
        refused = await world.client.post(f"/api/consults/{first['id']}/join-ticket", headers=world.headers[who])
        assert refused.status_code in (403, 404), (who, refused.text)
    monkeypatch.setattr("telehealth.session_tokens.JOIN_TICKET_TTL_S", -1)
    with pytest.raises(JoinRefused, match="join ticket expired"):
        join(world, first["room_id"], ticket)
    # Signing out voids the tickets made from the session.
    monkeypatch.undo()
    await world.client.post("/api/logout", headers=world.headers["gp_a"])
    with pytest.raises(JoinRefused, match="signed out"):
        join(world, first["room_id"], ticket)
