"""NAT that works: time-limited TURN credentials for signed-in users and consult participants only, and a browser
forced to relay through a real coturn (started on loopback) gets the video and the findings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import time

import httpx
import pytest

from scopecast.app import create_app
from scopecast.assets import SAMPLE_CLIP
from scopecast.settings import Settings
from stream.rooms import RoomGrant, RoomRefused
from stream.turn import TurnRelay
from tests.helpers.fakes import BoxModel, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.stream_access import (
    CLINICIAN_HEADERS,
    clinician_page,
    fixed_token_access,
    watch_monitor_with_findings,
)
from tests.helpers.turn_server import coturn

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_credentials_follow_the_turn_rest_scheme():
    relay = TurnRelay(("turn:turn.example.org:3478",), "s3cret", ttl_s=600)
    server = relay.credentials("user7", now=1_000_000)
    assert server["username"] == "1000600:user7"
    expected = base64.b64encode(hmac.new(b"s3cret", b"1000600:user7", hashlib.sha1).digest()).decode()
    assert server["credential"] == expected and server["urls"] == ["turn:turn.example.org:3478"]


def test_turn_urls_need_their_secret():
    with pytest.raises(ValueError, match="turn_secret"):
        Settings(turn_urls=["turn:127.0.0.1:3478"])
    with pytest.raises(ValueError, match="credentials come from turn_secret"):
        Settings(turn_urls=["turn:alice:pw@127.0.0.1:3478"], turn_secret="x")


async def _room_grant(room_id: str, credential: str) -> RoomGrant:
    if credential != "the-patients-join-key":
        raise RoomRefused("wrong key")
    return RoomGrant(room_id, "patient")


async def test_only_the_signed_in_and_room_members_get_turn_credentials():
    settings = Settings(
        serve_sample=False,
        model="box",
        turn_urls=["turn:127.0.0.1:3478"],
        turn_secret="s3cret",
        ice_servers=["stun:127.0.0.1:3478"],
    )
    app = create_app(
        settings,
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
        room_authorizer=_room_grant,
    )
    async with running_server(app) as addr, httpx.AsyncClient(base_url=f"http://{addr}") as http:
        anonymous = (await http.get("/api/ice-config")).json()
        signed_in = (await http.get("/api/ice-config", headers=CLINICIAN_HEADERS)).json()
        member = (
            await http.get(
                "/api/ice-config", headers={"X-Consult-Room": "room-abcdefgh", "X-Consult-Key": "the-patients-join-key"}
            )
        ).json()
        stranger = (
            await http.get(
                "/api/ice-config", headers={"X-Consult-Room": "room-abcdefgh", "X-Consult-Key": "guessed-key"}
            )
        ).json()
    assert anonymous == {"iceServers": [{"urls": "stun:127.0.0.1:3478"}], "iceTransportPolicy": "all"}
    assert stranger == anonymous
    for config, who in ((signed_in, "user1"), (member, "room-patient")):
        turn = config["iceServers"][1]
        expiry, name = turn["username"].split(":")
        assert name == who and 3500 < int(expiry) - time.time() <= 3600
        assert (
            turn["credential"]
            == base64.b64encode(hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()).decode()
        )


@pytest.mark.browser
async def test_a_browser_forced_to_relay_gets_video_and_findings_through_coturn(tmp_path, artifacts_dir):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); scripts/install.sh installs it")
    from playwright.async_api import async_playwright

    with coturn(tmp_path) as turn:
        settings = Settings(
            sources=[f"sample={SAMPLE_CLIP}"],
            model="box",
            turn_urls=[turn.url],
            turn_secret=turn.secret,
            ice_transport_policy="relay",
        )
        app = create_app(settings, registry_with(box=BoxModel()), vlm=keyword_vlm(), stream_access=fixed_token_access())
        async with running_server(app) as addr, async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--use-fake-ui-for-media-stream"],
            )
            try:
                page = await clinician_page(browser, addr)
                await watch_monitor_with_findings(page, addr)
                # The pair in use: the browser's side is a relayed (TURN) candidate.
                local_type = await page.evaluate("""async () => {
                    const stats = await window.scopecastSession.pc.getStats();
                    let pair = null;
                    stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
                    return pair ? stats.get(pair.localCandidateId).candidateType : null;
                }""")
                await page.screenshot(path=str(artifacts_dir / "monitor-through-turn.png"))
            finally:
                await browser.close()
        log = (tmp_path / "turnserver.log").read_text()
    assert local_type == "relay"
    assert "ALLOCATE processed, success" in log  # coturn allocated the relay, with the time-limited credentials


async def test_coturn_down_is_named_on_the_page_and_direct_paths_still_work(tmp_path, artifacts_dir):
    """TURN configured but coturn stopped: where only relayed video is allowed the monitor says the relay did not
    answer (instead of a black video); where direct paths are allowed the video still plays on the LAN."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); scripts/install.sh installs it")
    from playwright.async_api import async_playwright, expect

    with coturn(tmp_path) as turn:
        pass  # it ran; now it is down, at the address scopecast was told
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--use-fake-ui-for-media-stream"],
        )
        try:
            for policy in ("relay", "all"):
                settings = Settings(
                    sources=[f"sample={SAMPLE_CLIP}"],
                    model="box",
                    turn_urls=[turn.url],
                    turn_secret=turn.secret,
                    ice_transport_policy=policy,
                )
                app = create_app(
                    settings, registry_with(box=BoxModel()), vlm=keyword_vlm(), stream_access=fixed_token_access()
                )
                async with running_server(app) as addr, httpx.AsyncClient(base_url=f"http://{addr}") as http:
                    page = await clinician_page(browser, addr)
                    if policy == "relay":
                        await page.goto(f"http://{addr}/monitor?stream=sample")
                        await expect(page.locator("#error")).to_contain_text(
                            f"the TURN relay server ({turn.url}) did not answer, and this server allows relayed video "
                            "only",
                            timeout=20_000,
                        )
                        await page.screenshot(path=str(artifacts_dir / "monitor-turn-down.png"))
                    else:
                        await watch_monitor_with_findings(page, addr)
                    # The server serves on either way.
                    assert (await http.get("/api/streams", headers=CLINICIAN_HEADERS)).status_code == 200
                    await page.context.close()
        finally:
            await browser.close()
