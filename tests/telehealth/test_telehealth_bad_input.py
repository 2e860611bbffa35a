"""Bad requests get a clear 4xx with the reason, and change nothing (every table's row count stays the same)."""

from __future__ import annotations

import pytest
from telehealth_testutil import PASSWORD, jpeg_bytes


async def call(world, who: str | None, method: str, url: str, **kwargs):
    headers = dict(kwargs.pop("headers", {}))
    if who is not None:
        headers.update(world.headers[who])
    return await world.client.request(method, url, headers=headers, **kwargs)


def photo(data: bytes | None = None, name: str = "w.jpg") -> dict:
    return {"photo": (name, data if data is not None else jpeg_bytes(99), "image/jpeg")}


# (who, method, url template, kwargs, status, words expected in the reason)
CASES = [
    (None, "GET", "/api/cases", {}, 401, "not logged in"),
    (None, "POST", "/api/cases/{pat_a}/photos", {"files": photo()}, 401, "not logged in"),
    (None, "GET", "/api/cases", {"headers": {"Authorization": "Bearer nonsense"}}, 401, "invalid session token"),
    (None, "GET", "/api/cases", {"headers": {"Authorization": "Basic dXNlcjpwdw=="}}, 401, "Bearer"),
    ("pat_a", "POST", "/api/invites", {"json": {"email": "x@mail.test"}}, 403, "this needs role admin or gp"),
    ("surgeon", "POST", "/api/cases/{pat_a}/photos", {"files": photo()}, 403, "this needs role gp or patient"),
    ("surgeon", "POST", "/api/cases", {"json": {}}, 403, "patient"),
    ("pat_a", "GET", "/api/cases/{pat_b}", {}, 404, "no case"),
    ("pat_a", "POST", "/api/cases/{pat_b}/photos", {"files": photo()}, 404, "no case"),
    ("gp_b", "POST", "/api/cases/{pat_a}/photos", {"files": photo()}, 404, "no case"),
    ("pat_a", "POST", "/api/cases", {"json": {"patient_id": "{pat_b_patient}"}}, 404, "no patient"),
    ("gp_a", "POST", "/api/cases", {"json": {"patient_id": "{pat_b_patient}"}}, 404, "no patient"),
    ("pat_a", "GET", "/api/cases/424242", {}, 404, "no case 424242"),
    ("pat_a", "GET", "/api/photos/424242", {}, 404, "no photo 424242"),
    ("pat_a", "GET", "/api/photos/424242/thumbnail", {}, 404, "no photo 424242"),
    ("pat_a", "GET", "/api/cases/not-a-number", {}, 422, "integer"),
    (
        None,
        "POST",
        "/api/login",
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        422,
        "JSON",
    ),
    (None, "POST", "/api/login", {"json": {"email": "a@b.c"}}, 422, "Field required"),
    (
        None,
        "POST",
        "/api/login",
        {"json": {"email": "a@b.c", "password": "x" * 20, "role": "admin"}},
        422,
        "Extra inputs",
    ),
    ("gp_a", "POST", "/api/invites", {"json": {"email": "not an email"}}, 422, "not a valid email"),
    (
        "gp_a",
        "POST",
        "/api/invites",
        {"content": b'{"email": "' + b"a" * 70_000 + b'"}', "headers": {"Content-Type": "application/json"}},
        413,
        "body too large",
    ),
    (None, "POST", "/api/invites/unknown-token/accept", {"json": {"password": PASSWORD}}, 404, "unknown invite link"),
    ("pat_a", "POST", "/api/cases/{pat_a}/photos", {"files": photo(b"<html>not a photo</html>")}, 415, "not an image"),
    (
        "pat_a",
        "POST",
        "/api/cases/{pat_a}/photos",
        {"files": photo(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "w.png")},
        415,
        "not an image",
    ),
    (
        "pat_a",
        "POST",
        "/api/cases/{pat_a}/photos",
        {"files": photo(), "headers": {"Idempotency-Key": "has spaces in it"}},
        400,
        "Idempotency-Key",
    ),
    (
        "pat_a",
        "POST",
        "/api/cases/{pat_a}/photos",
        {"content": b"--xx\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=xx"}},
        422,
        "photo",
    ),
]


@pytest.mark.parametrize(
    ("who", "method", "url", "kwargs", "status", "reason"), CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[4]}" for c in CASES]
)
async def test_bad_request_is_refused_and_changes_nothing(world, who, method, url, kwargs, status, reason) -> None:
    ids = {
        "pat_a": world.case_ids["pat_a"],
        "pat_b": world.case_ids["pat_b"],
        "pat_b_patient": world.patient_ids["pat_b"],
    }
    url = url.format(**ids)
    if "json" in kwargs and kwargs["json"].get("patient_id") == "{pat_b_patient}":
        kwargs = {**kwargs, "json": {**kwargs["json"], "patient_id": ids["pat_b_patient"]}}
    await world.services.analyses.wait_idle()  # a background analysis of an earlier upload is not this request's change
    before = world.services.store.row_counts()
    files_before = sorted(world.services.store.files.root.rglob("*"))
    r = await call(world, who, method, url, **kwargs)
    assert r.status_code == status, r.text
    assert reason.lower() in r.text.lower(), r.text
    if status == 401:
        assert r.headers.get("www-authenticate") == "Bearer"
    assert world.services.store.row_counts() == before
    assert sorted(world.services.store.files.root.rglob("*")) == files_before


async def test_replayed_invite_is_gone_and_changes_nothing(world) -> None:
    c = world.client
    r = await c.post("/api/invites", json={"email": "new@mail.test"}, headers=world.headers["gp_a"])
    token = r.json()["invite_url"].split("invite=")[1]
    assert (await c.post(f"/api/invites/{token}/accept", json={"password": PASSWORD})).status_code == 201
    before = world.services.store.row_counts()
    replay = await c.post(f"/api/invites/{token}/accept", json={"password": "another password"})
    assert replay.status_code == 410 and "already used" in replay.json()["detail"]
    assert world.services.store.row_counts() == before


async def test_idempotency_key_reused_for_another_case(world, services) -> None:
    c = world.client
    first = await c.post(
        f"/api/cases/{world.case_ids['pat_a']}/photos",
        files=photo(),
        headers={**world.headers["pat_a"], "Idempotency-Key": "k1"},
    )
    assert first.status_code == 201
    second_case = await c.post("/api/cases", json={"label": "right toe"}, headers=world.headers["pat_a"])
    await services.analyses.wait_idle()  # the first upload's background analysis adds its own rows
    before = services.store.row_counts()
    r = await c.post(
        f"/api/cases/{second_case.json()['id']}/photos",
        files=photo(),
        headers={**world.headers["pat_a"], "Idempotency-Key": "k1"},
    )
    assert r.status_code == 409 and "another case" in r.json()["detail"]
    assert services.store.row_counts() == before
