"""Signing out ends watching through Janus: the product's real login (telehealth accounts and sessions) and a real
Janus on loopback. A GP signed in twice (two devices) gets a Janus token on each; signing out on one removes that
token from Janus at once, and the other device watches on."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator

import httpx
import pytest

from perception.vlm.grounded import GroundedBackend
from scopecast.app import build_telehealth, create_app
from scopecast.assets import SAMPLE_CLIP
from scopecast.settings import Settings
from stream.janus.client import JanusSession, open_session
from stream.janus.errors import JanusTokenRefused
from telehealth.accounts import add_user
from telehealth.records import Role
from telehealth.services import TelehealthServices
from tests.helpers.fakes import BoxModel, registry_with
from tests.helpers.janus_server import janus_server
from tests.helpers.servers import running_server
from tests.telehealth.telehealth_testutil import PASSWORD, fast_settings

pytestmark = pytest.mark.skipif(
    shutil.which("janus") is None, reason="Janus is not installed (scripts/install.sh installs it)"
)


@pytest.fixture
def services(tmp_path) -> Iterator[TelehealthServices]:
    made = build_telehealth(fast_settings(tmp_path / "telehealth"), segmenter_factory=lambda: None)
    add_user(made.store, "gp@clinic.test", PASSWORD, Role.gp)
    yield made
    made.store.close()


async def _sign_in(http: httpx.AsyncClient) -> dict[str, str]:
    r = await http.post("/api/login", json={"email": "gp@clinic.test", "password": PASSWORD})
    assert r.status_code == 200, r.text
    http.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def _janus_grant(http: httpx.AsyncClient, headers: dict[str, str], renew: str | None = None) -> dict:
    deadline = time.monotonic() + 30
    while True:
        params = {"renew": renew} if renew else {}
        reply = (await http.get("/api/streams/scope/janus", headers=headers, params=params)).json()
        if reply["available"] or time.monotonic() > deadline:
            assert reply["available"], reply["reason"]
            return reply
        await asyncio.sleep(0.3)


async def _end(session: JanusSession) -> None:
    await session.destroy()
    await session.connection.close()


async def test_signing_out_removes_that_sign_ins_janus_token_and_only_that_one(tmp_path, services) -> None:
    with janus_server(tmp_path) as janus:
        settings = Settings(
            sources=[f"scope={SAMPLE_CLIP}"],
            model="box",
            janus_url=janus.config.ws_url,
            janus_admin_url=janus.config.admin_url,
            janus_admin_secret=janus.config.admin_secret,
            janus_room_admin_key=janus.config.room_admin_key,
        )
        app = create_app(
            settings,
            registry=registry_with(box=BoxModel()),
            vlm=GroundedBackend(use_embeddings=False),
            telehealth=services,
        )
        async with running_server(app) as addr, httpx.AsyncClient(base_url=f"http://{addr}") as http:
            laptop, phone = await _sign_in(http), await _sign_in(http)
            on_laptop, on_phone = await _janus_grant(http, laptop), await _janus_grant(http, phone)
            # A token is tied to the sign-in it was issued to: the phone cannot keep the laptop's alive.
            moved = await _janus_grant(http, phone, renew=on_laptop["token"])
            assert moved["token"] != on_laptop["token"]
            await _end(await open_session(janus.config.ws_url, on_laptop["token"]))

            assert (await http.post("/api/logout", headers=laptop)).status_code == 204
            admin_tokens: list[str] = []
            for _ in range(50):  # revoked on the event loop just after the sign-out returns
                admin_tokens = await app.state.janus.admin.list_tokens()
                if on_laptop["token"] not in admin_tokens:
                    break
                await asyncio.sleep(0.1)
            assert on_laptop["token"] not in admin_tokens
            with pytest.raises(JanusTokenRefused, match="token expired or unknown"):
                await open_session(janus.config.ws_url, on_laptop["token"])
            # The phone's sign-in is untouched: its token still opens Janus and still renews.
            assert on_phone["token"] in admin_tokens and moved["token"] in admin_tokens
            await _end(await open_session(janus.config.ws_url, on_phone["token"]))
            assert (await _janus_grant(http, phone, renew=on_phone["token"]))["token"] == on_phone["token"]
            # The signed-out sign-in gets nothing more.
            assert (await http.get("/api/streams/scope/janus", headers=laptop)).status_code == 401
