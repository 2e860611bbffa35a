"""Every streaming endpoint and page needs a signed-in user whose role may see streams, through the product's one
login (telehealth accounts): no token, a bad or logged-out token, a patient, and a foreign page origin are each refused
with a clear error and counted in /metrics; surgeons, GPs and admins get in."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from scopecast.app import build_telehealth, create_app
from scopecast.settings import Settings
from stream.testing import client
from stream.testing.framestamp import StampedVideoTrack
from telehealth.accounts import add_user
from telehealth.records import Role
from tests.helpers.fakes import BoxModel, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.telehealth.telehealth_testutil import PASSWORD, fast_settings

ROLES = ("surgeon", "gp", "admin", "patient")
API = [("GET", "/api/streams"), ("GET", "/api/streams/cam"), ("POST", "/api/streams/cam/ask")]
PAGES = ["/monitor", "/capture"]


@pytest.fixture
async def server(tmp_path):
    services = build_telehealth(fast_settings(tmp_path / "telehealth"))
    for role in ROLES:
        add_user(services.store, f"{role}@clinic.test", PASSWORD, Role(role).value)
    app = create_app(
        Settings(serve_sample=False, model="box", allowed_origins=["https://theatre-wall.hospital.test"]),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        telehealth=services,
    )
    async with running_server(app) as addr:
        async with httpx.AsyncClient(base_url=f"http://{addr}", timeout=20) as http:
            tokens = {}
            for role in ROLES:
                r = await http.post("/api/login", json={"email": f"{role}@clinic.test", "password": PASSWORD})
                assert r.status_code == 200, r.text
                tokens[role] = r.json()["token"]
            http.cookies.clear()
            yield app, addr, http, tokens


def _refusals(app, surface: str, code: str) -> float:
    for metric in app.state.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "scopecast_stream_access_refused_total" and sample.labels == {
                "surface": surface,
                "code": code,
            }:
                return sample.value
    return 0.0


async def _publish_camera(addr: str, token: str) -> client.ClientSession:
    return await client.publish(f"ws://{addr}/ws", StampedVideoTrack(320, 240, 10), token=token)


async def test_stream_api_refuses_without_a_clinician_session(server):
    app, addr, http, tokens = server
    camera = await _publish_camera(addr, tokens["surgeon"])
    await camera.next_event("findings", timeout=20)
    try:
        for method, path in API:
            path = path.replace("cam", camera.stream_id)
            body = {"question": "what is there?"} if method == "POST" else None
            anonymous = await http.request(method, path, json=body)
            assert anonymous.status_code == 401 and "sign in" in anonymous.json()["detail"], (path, anonymous.text)
            forged = await http.request(method, path, json=body, headers={"Authorization": "Bearer forged.token.value"})
            assert forged.status_code == 401, (path, forged.text)
            patient = await http.request(
                method, path, json=body, headers={"Authorization": f"Bearer {tokens['patient']}"}
            )
            assert patient.status_code == 403 and "patient" in patient.json()["detail"], (path, patient.text)
            for role in ("surgeon", "gp", "admin"):
                ok = await http.request(method, path, json=body, headers={"Authorization": f"Bearer {tokens[role]}"})
                assert ok.status_code == 200, (role, path, ok.text)
        # A cookie is a read credential only: a page's GET carries it, a cross-site POST may not ride on it.
        http.cookies.set("scopecast_session", tokens["surgeon"])
        assert (await http.get("/api/streams")).status_code == 200
        assert (await http.post(f"/api/streams/{camera.stream_id}/ask", json={"question": "hi"})).status_code == 401
        http.cookies.clear()
    finally:
        await camera.close()
    assert _refusals(app, "api", "not_authenticated") >= 4
    assert _refusals(app, "api", "forbidden") == 3
    assert _refusals(app, "api", "invalid_session") == 3


async def test_pages_send_the_signed_out_to_sign_in_and_refuse_patients(server):
    app, _addr, http, tokens = server
    for page in PAGES:
        anonymous = await http.get(f"{page}?stream=x", follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == f"/signin?next={page.replace('/', '%2F')}%3Fstream%3Dx"
        http.cookies.set("scopecast_session", tokens["patient"])
        patient = await http.get(page, follow_redirects=False)
        assert patient.status_code == 403 and "signed in as patient" in patient.text
        http.cookies.set("scopecast_session", tokens["gp"])
        gp = await http.get(page, follow_redirects=False)
        assert gp.status_code == 200 and "<script" in gp.text
        http.cookies.clear()
    assert _refusals(app, "page", "not_authenticated") == 2
    assert _refusals(app, "page", "forbidden") == 2


async def _first_reply(addr: str, message: dict, **connect: object) -> dict:
    async with websockets.connect(f"ws://{addr}/ws", **connect) as ws:
        try:  # a refused socket says so at once, before any message
            return json.loads(await asyncio.wait_for(ws.recv(), 0.5))
        except TimeoutError:
            await ws.send(json.dumps(message))
            return json.loads(await ws.recv())


async def test_the_socket_needs_a_session_a_role_and_an_allowed_origin(server):
    app, addr, _http, tokens = server
    offer = {
        "type": "publish",
        "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
    }
    watch = {"type": "watch", "stream_id": "anything", "sdp": offer["sdp"]}
    for message in (offer, watch):
        reply = await _first_reply(addr, message)
        assert reply["code"] == "not_authenticated" and '"type": "auth"' in reply["message"], reply
    assert (await _first_reply(addr, {"type": "auth", "token": "forged"}))["code"] == "invalid_session"

    with pytest.raises(client.ClientError) as refused:
        await _publish_camera(addr, tokens["patient"])
    assert refused.value.code == "forbidden" and "patient" in str(refused.value)
    with pytest.raises(client.ClientError) as refused:
        await client.watch(f"ws://{addr}/ws", "sample", token=tokens["patient"])
    assert refused.value.code == "forbidden"

    # A page on another origin cannot use a signed-in clinician's cookie to watch the theatre.
    cookie = {"Cookie": f"scopecast_session={tokens['surgeon']}"}
    foreign = await _first_reply(addr, watch, origin="https://evil.example", additional_headers=cookie)
    assert foreign["code"] == "origin_not_allowed" and foreign["closing"], foreign
    # Same origin (or one on the allow-list) with the cookie: signed in without an auth message.
    for origin in (f"http://{addr}", "https://theatre-wall.hospital.test"):
        reply = await _first_reply(addr, watch, origin=origin, additional_headers=cookie)
        assert reply["code"] == "unknown_stream", (origin, reply)  # past sign-in: the stream simply does not exist

    for role in ("surgeon", "gp", "admin"):
        camera = await _publish_camera(addr, tokens[role])
        viewer = await client.watch(f"ws://{addr}/ws", camera.stream_id, token=tokens["surgeon"])
        assert (await viewer.next_event("findings", timeout=20))["objects"]
        await viewer.close()
        await camera.close()
    assert _refusals(app, "socket", "not_authenticated") == 2
    assert _refusals(app, "socket", "forbidden") == 2
    assert _refusals(app, "socket", "origin_not_allowed") == 1
    assert _refusals(app, "socket", "invalid_session") == 1


async def test_a_logged_out_token_no_longer_opens_streams(server):
    app, addr, http, tokens = server
    headers = {"Authorization": f"Bearer {tokens['surgeon']}"}
    assert (await http.get("/api/streams", headers=headers)).status_code == 200
    assert (await http.post("/api/logout", headers=headers)).status_code == 204
    assert (await http.get("/api/streams", headers=headers)).status_code == 401
    with pytest.raises(client.ClientError) as refused:
        await _publish_camera(addr, tokens["surgeon"])
    assert refused.value.code == "invalid_session"
    # The GP's own session is untouched by the surgeon's logout.
    assert (await http.get("/api/streams", headers={"Authorization": f"Bearer {tokens['gp']}"})).status_code == 200
