from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from postgres_server import postgres_cluster
from telehealth_testutil import PASSWORD, fast_settings, include_telehealth

from scopecast.app import build_telehealth
from telehealth.accounts import add_user
from telehealth.records import Role
from telehealth.services import TelehealthServices


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture
def telehealth_db_url() -> str | None:
    """The database the telehealth services use: None is SQLite under the test's folder (the default);
    test_telehealth_postgres.py overrides it with a fresh PostgreSQL database."""
    return None


@pytest.fixture
def services(tmp_path, telehealth_db_url) -> Iterator[TelehealthServices]:
    made = build_telehealth(fast_settings(tmp_path / "telehealth", database_url=telehealth_db_url))
    yield made
    made.store.close()


@pytest.fixture
def app(services: TelehealthServices) -> FastAPI:
    app = FastAPI()
    include_telehealth(app, services)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


class World:
    """A small clinic: two GPs, a surgeon, an admin, and two patients each with one case (GP A's and GP B's)."""

    def __init__(self, services: TelehealthServices, client: httpx.AsyncClient) -> None:
        self.services = services
        self.client = client
        self.headers: dict[str, dict[str, str]] = {}
        self.case_ids: dict[str, int] = {}
        self.patient_ids: dict[str, int] = {}

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        r = await self.client.post("/api/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        # Tests speak bearer only; the login's session cookie would otherwise authenticate later cookie-less GETs.
        self.client.cookies.clear()
        return {"Authorization": f"Bearer {r.json()['token']}"}

    async def invite_patient(self, gp: str, email: str) -> int:
        r = await self.client.post("/api/invites", json={"email": email}, headers=self.headers[gp])
        assert r.status_code == 201, r.text
        token = r.json()["invite_url"].split("invite=")[1]
        r = await self.client.post(f"/api/invites/{token}/accept", json={"password": PASSWORD})
        assert r.status_code == 201, r.text
        self.client.cookies.clear()
        return r.json()["user"]["id"]


@pytest.fixture
async def world(services: TelehealthServices, client: httpx.AsyncClient) -> World:
    w = World(services, client)
    for name, role in (("gp_a", Role.gp), ("gp_b", Role.gp), ("surgeon", Role.surgeon), ("admin", Role.admin)):
        add_user(services.store, f"{name}@clinic.test", PASSWORD, role)
        w.headers[name] = await w.login(f"{name}@clinic.test")
    for patient, gp in (("pat_a", "gp_a"), ("pat_b", "gp_b")):
        await w.invite_patient(gp, f"{patient}@mail.test")
        w.headers[patient] = await w.login(f"{patient}@mail.test")
        r = await client.post("/api/cases", json={"label": "left heel"}, headers=w.headers[patient])
        assert r.status_code == 201, r.text
        w.case_ids[patient] = r.json()["id"]
        w.patient_ids[patient] = r.json()["patient_id"]
    return w
