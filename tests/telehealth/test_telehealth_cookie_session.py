"""The pages' session cookie: it survives a reload (GET /api/session), writes with it need the CSRF token, and a
session ends after the idle timeout or at its absolute expiry, whatever the activity."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from telehealth_testutil import PASSWORD

from telehealth.accounts import add_user
from telehealth.records import Role, utc_now
from telehealth.session_tokens import CSRF_HEADER, SESSION_COOKIE
from telehealth.store.tables import SessionRow


async def sign_in_with_cookie(client) -> str:
    r = await client.post("/api/login", json={"email": "gp@clinic.test", "password": PASSWORD})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie  # test settings: http
    return r.json()["csrf_token"]


async def test_a_reloaded_page_finds_its_session_and_csrf_token(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    csrf = await sign_in_with_cookie(client)
    r = await client.get("/api/session")  # the cookie alone, as after a reload
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["email"] == "gp@clinic.test"
    assert body["csrf_token"] == csrf
    assert body["idle_timeout_s"] == services.settings.session_idle_s


async def test_a_cookie_write_needs_the_sessions_csrf_token(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    csrf = await sign_in_with_cookie(client)
    before = services.store.row_counts()
    payload = {
        "full_name": "Ada Lovelace",
        "birth_date": "1950-12-10",
        "identifier_kind": "mrn",
        "identifier_value": "A1",
    }
    for headers, reason in (({}, "missing"), ({CSRF_HEADER: "0" * 64}, "wrong")):
        r = await client.post("/api/patients", json=payload, headers=headers)
        assert r.status_code == 403, r.text
        assert f"{CSRF_HEADER} header" in r.json()["detail"], reason
    assert services.store.row_counts() == before  # refused before anything was written
    r = await client.post("/api/patients", json=payload, headers={CSRF_HEADER: csrf})
    assert r.status_code == 201, r.text
    # Another session's token is not this one's.
    other = await client.post("/api/login", json={"email": "gp@clinic.test", "password": PASSWORD})
    assert other.json()["csrf_token"] != csrf


async def test_bearer_writes_need_no_csrf_token(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    r = await client.post("/api/login", json={"email": "gp@clinic.test", "password": PASSWORD})
    client.cookies.clear()
    payload = {
        "full_name": "Ada Lovelace",
        "birth_date": "1950-12-10",
        "identifier_kind": "mrn",
        "identifier_value": "A1",
    }
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (await client.post("/api/patients", json=payload, headers=headers)).status_code == 201


async def test_an_idle_session_ends_and_says_why(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    await sign_in_with_cookie(client)
    assert (await client.get("/api/session")).status_code == 200
    idle = timedelta(seconds=services.settings.session_idle_s + 5)
    with services.store.db.session() as s:
        s.execute(update(SessionRow).values(last_seen_at=utc_now() - idle, created_at=utc_now() - idle))
    r = await client.get("/api/session")
    assert r.status_code == 401
    assert "without activity" in r.json()["detail"]


async def test_activity_keeps_a_session_alive_until_its_absolute_expiry(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    await sign_in_with_cookie(client)
    nearly_idle = timedelta(seconds=services.settings.session_idle_s - 30)
    with services.store.db.session() as s:
        s.execute(update(SessionRow).values(last_seen_at=utc_now() - nearly_idle))
    assert (await client.get("/api/session")).status_code == 200  # used in time: the last-seen time moves on
    with services.store.db.session() as s:
        row = s.query(SessionRow).one()
        assert utc_now() - row.last_seen_at.replace(tzinfo=utc_now().tzinfo) < timedelta(seconds=10)
        s.execute(update(SessionRow).values(expires_at=utc_now() - timedelta(seconds=1)))
    r = await client.get("/api/session")
    assert (r.status_code, r.json()["detail"]) == (401, "session expired, please log in again")


async def test_sign_out_ends_the_cookie_session_server_side(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    await sign_in_with_cookie(client)
    token = client.cookies.get(SESSION_COOKIE)
    assert (await client.post("/api/logout")).status_code == 204
    # The old cookie, replayed, names a revoked session.
    r = await client.get("/api/session", cookies={SESSION_COOKIE: token})
    assert (r.status_code, r.json()["detail"]) == (401, "session ended: you signed out, please sign in again")
