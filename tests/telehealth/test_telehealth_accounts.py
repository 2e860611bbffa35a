"""Accounts, login, session tokens and one-time invite links."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from telehealth_testutil import PASSWORD, SECRET

from telehealth.accounts import add_user
from telehealth.errors import DuplicateEmail, InvalidEmail, UnknownRole, WeakPassword
from telehealth.login_throttle import LoginThrottle, ThrottleLimits, TooManyAttempts
from telehealth.records import Role, utc_now
from telehealth.session_tokens import SessionTokens
from telehealth.store.tables import InviteRow, UserRow


def test_add_user_and_its_errors(services) -> None:
    store = services.store
    user = add_user(store, "  Dr.Who@Clinic.TEST ", PASSWORD, "gp")
    assert (user.email, user.role) == ("dr.who@clinic.test", Role.gp)
    with store.db.session() as s:
        stored = s.get(UserRow, user.id).password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(DuplicateEmail):
        add_user(store, "dr.who@clinic.test", PASSWORD, "gp")
    with pytest.raises(InvalidEmail):
        add_user(store, "not-an-email", PASSWORD, "gp")
    with pytest.raises(WeakPassword, match="at least 12"):
        add_user(store, "x@clinic.test", "short", "gp")
    with pytest.raises(UnknownRole, match="patient, gp, surgeon, admin"):
        add_user(store, "x@clinic.test", PASSWORD, "nurse")


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password1234", "very common password"),  # on the common-password list, long enough
        ("qwertyuiop12", "similar to a commonly used password"),  # a keyboard walk
        ("abcdefghijklmn", "Sequences"),
        ("trustno1trustno1", "Repeats"),
        ("dr.who@clinic.test", "too easy to guess"),  # the account's own email
    ],
)
def test_guessable_passwords_are_refused_with_the_reason(services, password, why) -> None:
    with pytest.raises(WeakPassword, match=why) as refused:
        add_user(services.store, "dr.who@clinic.test", password, "gp")
    assert str(refused.value).startswith("password too easy to guess") and "longer phrase" in str(refused.value)
    assert services.store.row_counts()["users"] == 0  # nothing saved half-way


async def test_login_and_me(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    r = await client.post("/api/login", json={"email": "GP@clinic.test", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["user"]["role"] == "gp"
    assert "scopecast_session" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json() == {"id": body["user"]["id"], "email": "gp@clinic.test", "role": "gp", "display_name": None}
    for email, password in (("gp@clinic.test", "wrong password!"), ("nobody@clinic.test", PASSWORD)):
        r = await client.post("/api/login", json={"email": email, "password": password})
        assert (r.status_code, r.json()["detail"]) == (401, "wrong email or password")


def test_session_tokens_expire_and_resist_tampering() -> None:
    tokens = SessionTokens(SECRET, ttl_s=60)
    token = tokens.issue("session-7")
    assert tokens.verify(token) == "session-7"
    from telehealth.errors import InvalidSession

    with pytest.raises(InvalidSession, match="invalid"):
        tokens.verify(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    with pytest.raises(InvalidSession, match="invalid"):
        SessionTokens("another-secret-" + "y" * 40, 60).verify(token)
    with pytest.raises(InvalidSession, match="expired"):
        SessionTokens(SECRET, ttl_s=-1).verify(token)


async def test_invite_flow_replay_and_expiry(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    gp = {
        "Authorization": f"Bearer {(await client.post('/api/login', json={'email': 'gp@clinic.test', 'password': PASSWORD})).json()['token']}"
    }
    r = await client.post("/api/invites", json={"email": "pat@mail.test"}, headers=gp)
    assert r.status_code == 201
    url = r.json()["invite_url"]
    assert url.startswith("http://test/patient#invite=")  # absolute: a phone opens it, or its QR code
    token = url.split("invite=")[1]
    r = await client.post(f"/api/invites/{token}/accept", json={"password": "short"})
    assert (r.status_code, r.json()["detail"]) == (422, "password too short: at least 12 characters")
    r = await client.post(f"/api/invites/{token}/accept", json={"password": PASSWORD})
    assert r.status_code == 201 and r.json()["user"]["role"] == "patient"
    replay = await client.post(f"/api/invites/{token}/accept", json={"password": PASSWORD})
    assert replay.status_code == 410 and "already used" in replay.json()["detail"]

    r = await client.post("/api/invites", json={"email": "late@mail.test"}, headers=gp)
    late = r.json()["invite_url"].split("invite=")[1]
    with services.store.db.session() as s:
        s.execute(
            update(InviteRow)
            .where(InviteRow.email == "late@mail.test")
            .values(expires_at=utc_now() - timedelta(seconds=1))
        )
    expired = await client.post(f"/api/invites/{late}/accept", json={"password": PASSWORD})
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]
    unknown = await client.post("/api/invites/not-a-token/accept", json={"password": PASSWORD})
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "unknown invite link")
    # Inviting an email that already has an account reads like any invite (test_telehealth_invite_existing.py).
    again = await client.post("/api/invites", json={"email": "pat@mail.test"}, headers=gp)
    assert again.status_code == 201 and again.json().keys() == r.json().keys()


async def test_visibility_by_role(world) -> None:
    c = world.client
    c_json = {who: (await c.get("/api/cases", headers=h)).json() for who, h in world.headers.items()}

    def ids(who: str) -> list[int]:
        return [case["id"] for case in c_json[who]]

    assert ids("pat_a") == [world.case_ids["pat_a"]]
    assert ids("gp_a") == [world.case_ids["pat_a"]]
    assert ids("gp_b") == [world.case_ids["pat_b"]]
    assert ids("surgeon") == []
    assert sorted(ids("admin")) == sorted(world.case_ids.values())
    # Another patient's case id reads exactly like an id that does not exist.
    other = await c.get(f"/api/cases/{world.case_ids['pat_b']}", headers=world.headers["pat_a"])
    missing = await c.get("/api/cases/999999", headers=world.headers["pat_a"])
    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"].replace(str(world.case_ids["pat_b"]), "N") == missing.json()["detail"].replace(
        "999999", "N"
    )


async def test_logs_hold_no_patient_data(services, client, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    gp = {
        "Authorization": f"Bearer {(await client.post('/api/login', json={'email': 'gp@clinic.test', 'password': PASSWORD})).json()['token']}"
    }
    token = (
        (await client.post("/api/invites", json={"email": "secret.patient@mail.test"}, headers=gp))
        .json()["invite_url"]
        .split("invite=")[1]
    )
    pat = {
        "Authorization": f"Bearer {(await client.post(f'/api/invites/{token}/accept', json={'password': PASSWORD})).json()['token']}"
    }
    case = (await client.post("/api/cases", json={"label": "left heel ulcer"}, headers=pat)).json()
    from telehealth_testutil import jpeg_bytes

    r = await client.post(
        f"/api/cases/{case['id']}/photos", files={"photo": ("w.jpg", jpeg_bytes(1), "image/jpeg")}, headers=pat
    )
    assert r.status_code == 201
    # The test client's own request log (httpx) is not the server's: leave it out.
    server_records = [rec for rec in caplog.records if not rec.name.startswith(("httpx", "httpcore"))]
    assert any(rec.name.startswith("telehealth") for rec in server_records)
    logged = " ".join(f"{rec.getMessage()} {rec.__dict__}" for rec in server_records)
    for secret in ("secret.patient", "left heel", token, PASSWORD, r.json()["sha256"]):
        assert secret not in logged


async def test_password_guessing_is_throttled_per_account(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    for _ in range(5):
        r = await client.post("/api/login", json={"email": "gp@clinic.test", "password": "guess-guess-guess"})
        assert (r.status_code, r.json()["detail"]) == (401, "wrong email or password")
    # Blocked now, even with the right password (a guesser must not learn that a guess was right).
    for password in ("guess-guess-guess", PASSWORD):
        r = await client.post("/api/login", json={"email": "GP@clinic.test ", "password": password})
        assert r.status_code == 429
        assert r.json()["detail"] == "too many failed sign-ins for this account: try again in 15 min"
        assert 0 < int(r.headers["Retry-After"]) <= 900
    # Other accounts are not affected by one account's block.
    add_user(services.store, "gp2@clinic.test", PASSWORD, Role.gp)
    assert (await client.post("/api/login", json={"email": "gp2@clinic.test", "password": PASSWORD})).status_code == 200


def test_throttle_windows_per_account_and_address() -> None:
    now = [1000.0]
    throttle = LoginThrottle(ThrottleLimits(per_account=3, per_address=5, window_s=60), clock=lambda: now[0])
    for i in range(5):  # five accounts, one failure each, from one address
        throttle.check(f"user{i}", "10.0.0.9")
        throttle.failed(f"user{i}", "10.0.0.9")
    with pytest.raises(TooManyAttempts, match="from this address"):
        throttle.check("someone-new", "10.0.0.9")
    throttle.check("someone-new", "10.0.0.10")  # another address is fine
    for _ in range(3):
        throttle.failed("target", None)
    with pytest.raises(TooManyAttempts, match="for this account") as blocked:
        throttle.check("target", None)
    assert blocked.value.retry_after_s == 60
    now[0] += 61  # the window slides: old failures no longer count
    throttle.check("target", "10.0.0.9")
    throttle.failed("target", None)
    throttle.succeeded("target")  # a good sign-in clears the account's count
    throttle.check("target", None)


async def test_the_scale_marker_page_is_public_and_says_how_to_print_and_place_it(client) -> None:
    from telehealth.wound.marker_page import PRINT_CSS

    page = await client.get("/marker")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert 'width="210mm"' in html and "50 mm check bar" in html and 'href="/telehealth/static/marker.css"' in html
    assert "cannot tell a wrongly scaled marker from one photo" in html and "colour reference" in html
    assert "<style>" not in html  # the server's content policy refuses inline styles: the print CSS is a file
    css = await client.get("/telehealth/static/marker.css")
    assert css.status_code == 200 and css.text.replace("\n", "") == PRINT_CSS
    patient = await client.get("/patient")
    assert 'href="/marker"' in patient.text and "Print the scale" in patient.text


async def test_a_clinician_names_themself_for_signed_reports(world) -> None:
    c, gp = world.client, world.headers["gp_a"]
    assert (await c.get("/api/me", headers=gp)).json()["display_name"] is None
    r = await c.put("/api/me", json={"display_name": "  Dr   Jane  Smith "}, headers=gp)
    assert r.status_code == 200 and r.json()["display_name"] == "Dr Jane Smith"
    for bad, reason in (("Dr\x07Jane", "control characters"), ("x" * 130, "longer than 120")):
        refused = await c.put("/api/me", json={"display_name": bad}, headers=gp)
        assert refused.status_code == 422 and reason in refused.json()["detail"]
    assert (await c.get("/api/me", headers=gp)).json()["display_name"] == "Dr Jane Smith"
    with world.services.store.db.session() as s:
        from sqlalchemy import select

        from telehealth.store.tables import AuditEventRow

        edits = s.scalars(select(AuditEventRow).where(AuditEventRow.object_type == "user_display_name")).all()
        assert len(edits) == 1
    # Blank clears it: reports fall back to the email.
    assert (await c.put("/api/me", json={"display_name": " "}, headers=gp)).json()["display_name"] is None
