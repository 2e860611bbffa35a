"""Inviting an email that already has an account: answered exactly like a new one, and no way to take the account.

Before, such an invite was a 409, so any GP could test which emails have accounts. Now every invite is created the
same way; when its link is accepted for an existing account, the password entered must be that account's own, and
the account then becomes the inviting GP's patient (see docs/telehealth.md, "Invites").
"""

from __future__ import annotations

from sqlalchemy import select
from telehealth_testutil import PASSWORD

from telehealth.accounts import add_user
from telehealth.store.tables import PatientRow, UserRow


async def invite(world, gp: str, email: str):
    return await world.client.post("/api/invites", json={"email": email}, headers=world.headers[gp])


def token_of(r) -> str:
    return r.json()["invite_url"].split("invite=")[1]


async def test_existing_and_new_emails_get_the_same_answer(world) -> None:
    add_user(world.services.store, "nurse.staff@clinic.test", PASSWORD, "surgeon")
    answers = {
        email: await invite(world, "gp_b", email)
        for email in ("nobody.yet@mail.test", "pat_a@mail.test", "nurse.staff@clinic.test")
    }
    shapes = {
        email: (r.status_code, sorted(r.json()), {k: type(v).__name__ for k, v in r.json().items()})
        for email, r in answers.items()
    }
    assert len(set(map(repr, shapes.values()))) == 1, shapes
    assert shapes["pat_a@mail.test"][0] == 201
    # Nothing in the answer points at the existing account: a fresh patient record each time, like for a new email.
    ids = [r.json()["patient_id"] for r in answers.values()]
    assert len(set(ids)) == 3 and world.patient_ids["pat_a"] not in ids


async def test_existing_account_cannot_be_taken_over_by_its_invite(world) -> None:
    c = world.client
    r = await invite(world, "gp_b", "pat_a@mail.test")
    token = token_of(r)
    before = world.services.store.row_counts()
    for password in ("a brand new password", "another new password"):
        wrong = await c.post(f"/api/invites/{token}/accept", json={"password": password})
        assert wrong.status_code == 401, wrong.text
        assert wrong.json()["detail"] == (
            "wrong password: this email already has an account, enter its password to accept the invite"
        )
    c.cookies.clear()
    assert world.services.store.row_counts() == before  # nothing was linked, no account changed
    # The account's own password still works, the guesses did not: login as before.
    await world.login("pat_a@mail.test")
    r = await c.post("/api/login", json={"email": "pat_a@mail.test", "password": "a brand new password"})
    assert r.status_code == 401
    # And guessing through invites is throttled like sign-in, on the same count: 5 failures per account per window
    # (the good sign-in above cleared it; the bad one made it 1).
    for _ in range(4):
        await c.post(f"/api/invites/{token}/accept", json={"password": "yet another guess!"})
    blocked = await c.post(f"/api/invites/{token}/accept", json={"password": PASSWORD})
    assert blocked.status_code == 429


async def test_existing_patient_accepting_with_their_password_moves_to_the_new_gp(world) -> None:
    c = world.client
    r = await invite(world, "gp_b", "pat_a@mail.test")
    new_patient_id = r.json()["patient_id"]
    accepted = await c.post(f"/api/invites/{token_of(r)}/accept", json={"password": PASSWORD})
    c.cookies.clear()
    assert accepted.status_code == 201, accepted.text
    user = accepted.json()["user"]
    assert (user["email"], user["role"]) == ("pat_a@mail.test", "patient")
    me = await c.get("/api/me", headers=world.headers["pat_a"])  # the same account, its old session still good
    assert me.json()["id"] == user["id"]
    # One patient record for the account: the one the inviting GP was given, holding the existing case.
    with world.services.store.db.session() as s:
        rows = s.scalars(select(PatientRow).where(PatientRow.user_id == user["id"])).all()
        assert [(p.id, p.gp_user_id) for p in rows] == [(new_patient_id, world_gp_id(s, "gp_b"))]
    case_a = world.case_ids["pat_a"]
    assert [x["id"] for x in (await c.get("/api/cases", headers=world.headers["gp_b"])).json()] == sorted(
        [case_a, world.case_ids["pat_b"]]
    )
    assert (await c.get(f"/api/cases/{case_a}", headers=world.headers["gp_a"])).status_code == 404
    assert [x["id"] for x in (await c.get("/api/cases", headers=world.headers["pat_a"])).json()] == [case_a]
    opened = await c.post(
        "/api/cases", json={"patient_id": new_patient_id, "label": "right toe"}, headers=world.headers["gp_b"]
    )
    assert opened.status_code == 201
    replay = await c.post(f"/api/invites/{token_of(r)}/accept", json={"password": PASSWORD})
    assert replay.status_code == 410


async def test_staff_account_cannot_become_a_patient(world) -> None:
    r = await invite(world, "gp_a", "surgeon@clinic.test")
    before = world.services.store.row_counts()
    refused = await world.client.post(f"/api/invites/{token_of(r)}/accept", json={"password": PASSWORD})
    assert refused.status_code == 409
    assert "staff account" in refused.json()["detail"]
    assert world.services.store.row_counts() == before


def world_gp_id(s, name: str) -> int:
    return s.scalars(select(UserRow.id).where(UserRow.email == f"{name}@clinic.test")).one()
