"""Server-side sessions: a token names a session row; signing out revokes it at once, other sessions carry on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from telehealth_testutil import PASSWORD, SECRET
from test_telehealth_consults import open_consult, rooms  # noqa: F401  (rooms: the consult routes, fake live rooms)

from telehealth.accounts import add_user
from telehealth.errors import InvalidSession
from telehealth.records import Actor, Role, utc_now
from telehealth.session_tokens import SESSION_COOKIE, SessionTokens
from telehealth.store.consults import JoinRefused, authorize_join
from telehealth.store.tables import SessionRow, UserRow


async def sign_in(client, email: str = "gp@clinic.test") -> str:
    r = await client.post("/api/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return r.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_logout_revokes_this_session_only(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    laptop, phone = await sign_in(client), await sign_in(client)
    assert (await client.get("/api/me", headers=bearer(laptop))).status_code == 200

    out = await client.post("/api/logout", headers=bearer(laptop))
    assert out.status_code == 204
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    after = await client.get("/api/me", headers=bearer(laptop))
    assert (after.status_code, after.json()["detail"]) == (401, "session ended: you signed out, please sign in again")
    assert after.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/api/me", headers=bearer(phone))).json()["email"] == "gp@clinic.test"
    # Signing out twice, or with a token that names nothing, is still a plain 204.
    assert (await client.post("/api/logout", headers=bearer(laptop))).status_code == 204
    assert (await client.post("/api/logout", headers=bearer("garbage"))).status_code == 204
    assert (await client.post("/api/logout")).status_code == 204


async def test_logout_with_the_cookie_revokes_the_cookies_session(services, client) -> None:
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    r = await client.post("/api/login", json={"email": "gp@clinic.test", "password": PASSWORD})
    token = r.json()["token"]
    assert client.cookies.get(SESSION_COOKIE) == token
    assert (await client.get("/api/me")).status_code == 200  # a GET with the cookie alone
    assert (await client.post("/api/logout")).status_code == 204  # no bearer header: the cookie names the session
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/api/me", headers=bearer(token))).status_code == 401


def test_actor_for_token_reasons(services) -> None:
    """The public, blocking check the streaming side calls (via asyncio.to_thread) for WebSocket and stream callers."""
    auth = services.auth
    user = add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    token, expires_at = auth.sign_in(user.id)
    assert auth.actor_for_token(token) == Actor(user.id, Role.gp)
    assert timedelta(0) < expires_at - utc_now() <= timedelta(seconds=services.settings.session_ttl_s)
    for bad, reason in (
        ("", "invalid session token"),
        ("nonsense", "invalid session token"),
        (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "invalid session token"),
    ):
        with pytest.raises(InvalidSession, match=reason):
            auth.actor_for_token(bad)
    # A correctly signed token naming no session (never issued, or purged) is refused too.
    with pytest.raises(InvalidSession, match="session not found"):
        auth.actor_for_token(auth.tokens.issue("no-such-session"))
    # A token of the old stateless kind (the user id itself) no longer works.
    old = SessionTokens(SECRET, 60)._serializer.dumps({"uid": user.id})
    with pytest.raises(InvalidSession, match="invalid session token"):
        auth.actor_for_token(old)

    with services.store.db.session() as s:
        s.execute(update(SessionRow).values(expires_at=utc_now() - timedelta(seconds=1)))
    with pytest.raises(InvalidSession, match="session expired"):
        auth.actor_for_token(token)

    token, _ = auth.sign_in(user.id)
    with services.store.db.session() as s:
        s.execute(update(UserRow).where(UserRow.id == user.id).values(disabled=True))
    with pytest.raises(InvalidSession, match="account disabled or removed"):
        auth.actor_for_token(token)


def test_only_a_hash_of_the_session_id_is_stored(services) -> None:
    user = add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    token, expires_at = services.auth.sign_in(user.id)
    session_id = services.auth.tokens.verify(token)
    with services.store.db.session() as s:
        row = s.scalars(select(SessionRow)).one()
        assert (row.user_id, row.revoked_at) == (user.id, None)
        assert session_id not in row.session_sha256 and len(row.session_sha256) == 64
        assert row.created_at is not None and row.expires_at is not None


def test_signing_in_purges_expired_sessions(services) -> None:
    user = add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    old, _ = services.auth.sign_in(user.id)
    with services.store.db.session() as s:
        s.execute(update(SessionRow).values(expires_at=utc_now() - timedelta(days=1)))
    services.auth.sign_in(user.id)
    assert services.store.row_counts()["sessions"] == 1
    with pytest.raises(InvalidSession, match="session not found"):
        services.auth.actor_for_token(old)


async def test_a_signed_out_token_cannot_join_a_consult(world, rooms) -> None:  # noqa: F811
    made = await open_consult(world)
    token = world.headers["gp_a"]["Authorization"].split(" ", 1)[1]
    tokens = world.services.auth.tokens
    assert authorize_join(world.services.store, tokens, made["room_id"], token)[0] == "clinician"
    assert (await world.client.post("/api/logout", headers=world.headers["gp_a"])).status_code == 204
    with pytest.raises(JoinRefused, match="sign in again"):
        authorize_join(world.services.store, tokens, made["room_id"], token)
