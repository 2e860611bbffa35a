"""Many viewers, one encode: each stream published once into a real Janus VideoRoom (started on loopback with a
generated configuration), watched by an aiortc subscriber and by headless Chromium on /monitor, both getting video
and findings; tokens only for signed-in watchers; and what happens when Janus is down, restarts, or loses a room."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest

from scopecast.app import create_app
from scopecast.assets import SAMPLE_CLIP
from scopecast.settings import Settings
from stream.janus.client import open_session
from stream.janus.errors import JanusRequestFailed, JanusTokenRefused, JanusUnreachable, RoomGone
from stream.janus.fanout import JanusFanout
from stream.janus.local_config import free_tcp_port, write_config
from stream.janus.publisher import VIDEOROOM
from stream.janus.tokens import JanusTokens
from stream.testing.janus_viewer import watch_room
from tests.helpers.fakes import BoxModel, keyword_vlm, registry_with
from tests.helpers.janus_server import janus_server
from tests.helpers.servers import running_server
from tests.helpers.stream_access import (
    CLINICIAN_HEADERS,
    PATIENT_TOKEN,
    clinician_page,
    fixed_token_access,
    watch_monitor_with_findings,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The media permission flag also makes Chromium offer plain host candidates instead of mDNS names, which aioice
# would resolve with a process-wide lock bound to the first test's event loop (see test_theatre_monitor.py).
_CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--use-fake-ui-for-media-stream"]


def _settings(janus_config, **more) -> Settings:
    return Settings(
        sources=[f"sample={SAMPLE_CLIP}"],
        model="box",
        janus_url=janus_config.ws_url,
        janus_admin_url=janus_config.admin_url,
        janus_admin_secret=janus_config.admin_secret,
        janus_room_admin_key=janus_config.room_admin_key,
        **more,
    )


def _app(settings: Settings):
    return create_app(settings, registry_with(box=BoxModel()), vlm=keyword_vlm(), stream_access=fixed_token_access())


async def _until_live(http: httpx.AsyncClient, stream_id: str = "sample", timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        reply = (await http.get(f"/api/streams/{stream_id}/janus", headers=CLINICIAN_HEADERS)).json()
        if reply["available"] or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.3)


def test_janus_settings_need_the_admin_api_and_websocket_urls():
    with pytest.raises(ValueError, match="janus_admin_url or janus_admin_secret"):
        Settings(janus_url="ws://127.0.0.1:8188")
    with pytest.raises(ValueError, match="must be a WebSocket URL"):
        Settings(janus_url="http://127.0.0.1:8088", janus_admin_url="ws://127.0.0.1:7188", janus_admin_secret="x")


def test_the_generated_configuration_keeps_janus_on_loopback_with_tokens(tmp_path):
    config = write_config(tmp_path / "janus")
    core = (config.config_dir / "janus.jcfg").read_text()
    transport = (config.config_dir / "janus.transport.websockets.jcfg").read_text()
    assert "token_auth = true" in core and 'ice_enforce_list = "lo"' in core
    assert 'ws_ip = "127.0.0.1"' in transport and 'admin_ws_ip = "127.0.0.1"' in transport
    with janus_server(tmp_path) as janus:
        listening = _listening_addresses({janus.config.ws_port, janus.config.admin_port})
    assert listening == {("127.0.0.1", janus.config.ws_port), ("127.0.0.1", janus.config.admin_port)}


def _listening_addresses(ports: set[int]) -> set[tuple[str, int]]:
    """(address, port) of the listening TCP sockets on `ports`, from the kernel's tables (IPv4 and IPv6)."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            columns = line.split()
            address, port = columns[1].split(":")
            if columns[3] == "0A" and int(port, 16) in ports:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add((socket.inet_ntop(family, words), int(port, 16)))
    return found


def test_janus_config_command_writes_a_loopback_configuration_and_scopecasts_settings(tmp_path, capsys):
    from scopecast.cli import main

    assert main(["janus-config", "--out", str(tmp_path / "janus")]) == 0
    env = dict(line.split("=", 1) for line in (tmp_path / "janus" / "scopecast.env").read_text().splitlines())
    settings = Settings(
        janus_url=env["SCOPECAST_JANUS_URL"],
        janus_admin_url=env["SCOPECAST_JANUS_ADMIN_URL"],
        janus_admin_secret=env["SCOPECAST_JANUS_ADMIN_SECRET"],
        janus_room_admin_key=env["SCOPECAST_JANUS_ROOM_ADMIN_KEY"],
    )
    core = (tmp_path / "janus" / "janus.jcfg").read_text()
    assert settings.janus_url == "ws://127.0.0.1:8188" and settings.janus_admin_url == "ws://127.0.0.1:7188"
    assert (
        env["SCOPECAST_JANUS_ADMIN_SECRET"] in core and (tmp_path / "janus" / "janus.jcfg").stat().st_mode & 0o077 == 0
    )
    assert main(["janus-config", "--out", str(tmp_path / "open"), "--listen-ip", "0.0.0.0"]) == 2
    assert "not on every interface" in capsys.readouterr().err and not (tmp_path / "open").exists()


async def test_without_janus_configured_the_monitor_is_told_to_watch_directly():
    app = create_app(
        Settings(sources=[f"sample={SAMPLE_CLIP}"], model="box"),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )
    async with running_server(app) as addr, httpx.AsyncClient(base_url=f"http://{addr}") as http:
        reply = (await http.get("/api/streams/sample/janus", headers=CLINICIAN_HEADERS)).json()
        monitor = await http.get("/monitor", headers=CLINICIAN_HEADERS)
    assert reply == {
        "configured": False,
        "available": False,
        "reason": "Janus is not configured on this server",
        "url": None,
        "room": None,
        "feed": None,
        "token": None,
        "expires_at": None,
    }
    assert "connect-src 'self';" in monitor.headers["content-security-policy"]


async def test_janus_at_an_address_where_nothing_listens_is_named():
    url = f"ws://127.0.0.1:{free_tcp_port()}"
    with pytest.raises(JanusUnreachable, match=f"Janus at {url} unreachable"):
        await open_session(url, "any-token")


async def test_only_signed_in_watchers_get_a_token_and_janus_refuses_unknown_or_expired_ones(tmp_path):
    with janus_server(tmp_path) as janus:
        app = _app(_settings(janus.config))
        async with running_server(app) as addr, httpx.AsyncClient(base_url=f"http://{addr}") as http:
            anonymous = await http.get("/api/streams/sample/janus")
            patient = await http.get("/api/streams/sample/janus", headers={"Authorization": f"Bearer {PATIENT_TOKEN}"})
            unknown_stream = await http.get("/api/streams/nope/janus", headers=CLINICIAN_HEADERS)
            granted = await _until_live(http)
            assert granted["available"], granted["reason"]
            # The token works: a subscriber gets frames and the stream's status event through Janus.
            viewer = await watch_room(granted["url"], granted["token"], granted["room"], granted["feed"])
            try:
                frame = await asyncio.wait_for(viewer.track.recv(), 15)
                status = await viewer.next_event("status", 10)
            finally:
                await viewer.close()
            # A viewer's token lets it subscribe, not make rooms: that takes the VideoRoom's admin_key.
            session = await open_session(granted["url"], granted["token"])
            try:
                handle = await session.attach(VIDEOROOM)
                with pytest.raises(JanusRequestFailed, match="creating a room"):
                    await handle.message("creating a room", {"request": "create", "room": 77})
            finally:
                await session.destroy()
                await session.connection.close()
            # A room that is gone is named.
            with pytest.raises(RoomGone, match="Janus room 12345 no longer exists"):
                await watch_room(granted["url"], granted["token"], 12345, granted["feed"])
            # A made-up token is refused by Janus itself, in words.
            with pytest.raises(JanusTokenRefused, match="token expired or unknown"):
                await open_session(janus.config.ws_url, "made-up-token")
            # An expired one is removed from Janus and refused the same way.
            fanout: JanusFanout = app.state.janus
            now = [time.time()]
            tokens = JanusTokens(fanout.admin, ttl_s=60, clock=lambda: now[0])
            short = await tokens.issue(user_id=1)
            live = await open_session(janus.config.ws_url, short.token)  # accepted while valid
            await live.destroy()
            await live.connection.close()
            now[0] += 30
            renewed = await tokens.renew(short.token, user_id=1)
            stolen = await tokens.renew(short.token, user_id=2)
            now[0] += 45  # past the first lifetime, within the renewed one
            assert tokens.is_live(short.token)
            now[0] += 30
            await tokens.expire()
            assert await tokens.renew(short.token, user_id=1) is None
            with pytest.raises(JanusTokenRefused):
                await open_session(janus.config.ws_url, short.token)
            assert short.token not in await fanout.admin.list_tokens()
    assert anonymous.status_code == 401 and "sign in" in anonymous.json()["detail"]
    assert patient.status_code == 403 and "patient" in patient.json()["detail"]
    assert unknown_stream.status_code == 404 and "unknown stream 'nope'" in unknown_stream.json()["detail"]
    assert frame.width > 0 and status["type"] == "status"
    assert renewed is not None and renewed.expires_at > short.expires_at and stolen is None


async def test_janus_restart_and_a_vanished_room_are_republished(tmp_path):
    with janus_server(tmp_path) as janus:
        settings = _settings(janus.config)
        app = _app(settings)
        async with running_server(app) as addr, httpx.AsyncClient(base_url=f"http://{addr}") as http:
            first = await _until_live(http)
            assert first["available"], first["reason"]
            fanout: JanusFanout = app.state.janus
            publisher = fanout.publisher("sample")
            assert publisher is not None
            janus.stop()
            down = await _until_down(http)
            # The direct path is unaffected.
            streams = (await http.get("/api/streams", headers=CLINICIAN_HEADERS)).json()
            janus.start()
            again = await _until_live(http)
            assert again["available"], again["reason"]
            # Someone destroys the room (the room secret is the only key): scopecast recreates it and republishes.
            session = await open_session(janus.config.ws_url, again["token"])
            try:
                handle = await session.attach(VIDEOROOM)
                await handle.message(
                    "destroy", {"request": "destroy", "room": again["room"], "secret": publisher.spec.secret}
                )
            finally:
                await session.destroy()
                await session.connection.close()
            attempts = publisher.attempts
            deadline = time.monotonic() + 30
            while publisher.attempts == attempts and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            recreated = await _until_live(http)
            viewer = await watch_room(recreated["url"], recreated["token"], recreated["room"], recreated["feed"])
            try:
                frame = await asyncio.wait_for(viewer.track.recv(), 15)
            finally:
                await viewer.close()
    assert "unreachable" in down["reason"] or "closed the connection" in down["reason"]
    assert [s["stream_id"] for s in streams] == ["sample"]
    assert again["feed"] != first["feed"] and publisher.attempts > attempts and frame.width > 0


async def _until_down(http: httpx.AsyncClient, timeout_s: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        reply = (await http.get("/api/streams/sample/janus", headers=CLINICIAN_HEADERS)).json()
        if not reply["available"] or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.2)


@pytest.mark.browser
async def _listed_until(http: httpx.AsyncClient, done, timeout_s: float = 15.0) -> dict:  # type: ignore[no-untyped-def]
    """The sample's entry in /api/streams once `done(entry)` holds (or the last one seen)."""
    deadline = time.monotonic() + timeout_s
    while True:
        [entry] = [
            s for s in (await http.get("/api/streams", headers=CLINICIAN_HEADERS)).json() if s["stream_id"] == "sample"
        ]
        if done(entry) or time.monotonic() > deadline:
            return entry
        await asyncio.sleep(0.5)


async def test_one_publish_two_subscribers_aiortc_and_chromium_get_video_and_findings(tmp_path, artifacts_dir):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); scripts/install.sh installs it")
    from playwright.async_api import async_playwright

    with janus_server(tmp_path) as janus:
        app = _app(_settings(janus.config))
        async with running_server(app) as addr, httpx.AsyncClient(base_url=f"http://{addr}") as http:
            granted = await _until_live(http)
            assert granted["available"], granted["reason"]
            viewer = await watch_room(granted["url"], granted["token"], granted["room"], granted["feed"])
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=_CHROMIUM_ARGS)
                try:
                    page = await clinician_page(browser, addr)
                    await watch_monitor_with_findings(page, addr)
                    path = await page.evaluate("document.body.dataset.path")
                    # Questions go on the viewer's own data-channel-only connection; the answer comes back there.
                    await page.fill("#ask input", "what do you see?")
                    await page.click("#ask button[type=submit]")
                    await page.wait_for_selector("#ask .a.done", timeout=15_000)
                    answer = await page.inner_text("#ask .a.done")
                    # One encode for all: the only relay subscriber is scopecast's Janus publisher (the page's
                    # questions connection carries no video).
                    viewers = app.state.hub.get("sample").pipeline.viewers
                    notice = await page.text_content("#notice")
                    await page.screenshot(path=str(artifacts_dir / "monitor-through-janus.png"))
                    # A page holding a token Janus does not know (expired, or Janus restarted) is told so, in words.
                    refused = await page.evaluate(
                        """async (info) => {
                            const { watchThroughJanus } = await import('/static/janus_watch.js');
                            try {
                                await watchThroughJanus({ info: { ...info, token: 'expired-token' },
                                                          ice: { iceServers: [] }, onEvent: () => null });
                                return 'watched';
                            } catch (e) { return e.message; }
                        }""",
                        granted,
                    )
                    frames = [await asyncio.wait_for(viewer.track.recv(), 15) for _ in range(10)]
                    findings = await viewer.next_event("findings", 15)
                    # Janus counts its subscribers of the feed (the aiortc viewer and the page); scopecast asks it
                    # every few seconds and lists the count with the stream.
                    listed = await _listed_until(http, lambda s: s["janus_viewers"] == 2)
                finally:
                    await browser.close()
                    await viewer.close()
    assert path == "janus" and notice == "Watching through Janus (the overlay switch needs the direct view)"
    assert "thing 1" in answer  # the grounded answer names the detection the box model made
    assert refused == "Janus token expired or unknown: press Watch for a new one"
    assert all(f.width > 0 for f in frames) and findings["objects"]
    assert viewers == 1
    assert listed["janus_viewers"] == 2 and listed["viewers"] == 1


@pytest.mark.browser
async def test_janus_down_the_monitor_watches_directly_with_a_notice(tmp_path, artifacts_dir):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); scripts/install.sh installs it")
    from playwright.async_api import async_playwright

    nothing, no_admin = (f"ws://127.0.0.1:{free_tcp_port()}" for _ in range(2))
    settings = Settings(
        sources=[f"sample={SAMPLE_CLIP}"],
        model="box",
        janus_url=nothing,
        janus_admin_url=no_admin,
        janus_admin_secret="unused",
    )
    app = _app(settings)
    async with running_server(app) as addr, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=_CHROMIUM_ARGS)
        try:
            page = await clinician_page(browser, addr)
            await watch_monitor_with_findings(page, addr)
            notice = await page.text_content("#notice")
            path = await page.evaluate("document.body.dataset.path")
            await page.screenshot(path=str(artifacts_dir / "monitor-janus-down.png"))
        finally:
            await browser.close()
    assert path == "direct"
    assert notice is not None and notice.startswith("Janus unavailable: watching directly from scopecast")
    # The publisher's own token is added first, so the admin API is the first thing found missing.
    assert f"Janus at {no_admin} unreachable" in notice or f"Janus at {nothing} unreachable" in notice


def test_a_publishers_subscriber_count_is_read_from_its_handle_report():
    from stream.janus.fanout import video_subscribers

    report = {
        "plugin": "janus.plugin.videoroom",
        "plugin_specific": {
            "type": "publisher",
            "streams": [{"type": "video", "subscribers": 7}, {"type": "data", "subscribers": 9}],
        },
    }
    assert video_subscribers(report) == 7
    assert video_subscribers({"plugin_specific": {"type": "publisher", "streams": []}}) == 0  # no one yet
    assert video_subscribers({"plugin_specific": {"type": "subscriber"}}) is None  # not a publisher's handle
    assert video_subscribers({}) is None  # a handle Janus no longer knows
