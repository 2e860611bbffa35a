"""Headless Chromium as a real WebRTC peer: the camera page and the monitor page, with screenshots."""

from __future__ import annotations

import shutil

import pytest

from scopecast.app import create_app
from scopecast.assets import SAMPLE_CLIP
from scopecast.settings import Settings
from tests.helpers.fake_camera import write_y4m
from tests.helpers.fakes import BoxModel, ScriptedVlm, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.stream_access import clinician_page, fixed_token_access

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def browser(tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); scripts/install.sh installs it")
    from playwright.async_api import async_playwright

    camera = write_y4m(tmp_path / "camera.y4m")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={camera}",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        await browser.close()


async def _wait_video_playing(page, selector: str) -> None:
    await page.wait_for_function(
        f"""() => {{ const v = document.querySelector('{selector}');
                     return v && v.videoWidth > 0 && v.currentTime > 1.0; }}""",
        timeout=30_000,
    )


async def test_capture_page_round_trip_and_monitor_of_that_camera(browser, artifacts_dir):
    app = create_app(
        Settings(serve_sample=False, model="box"),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )
    async with running_server(app) as addr:
        page = await clinician_page(browser, addr, viewport={"width": 1280, "height": 720})
        await page.goto(f"http://{addr}/capture?auto=1")
        await _wait_video_playing(page, "#annotated")
        await page.wait_for_selector("#panel li.object", timeout=15_000)
        assert "thing" in await page.inner_text("#panel .objects")
        assert "AI live" in await page.inner_text("#panel .status")
        stream_id = await page.evaluate("window.scopecastSession.streamId")
        size = await page.evaluate(
            "[document.querySelector('#annotated').videoWidth, document.querySelector('#annotated').videoHeight]"
        )
        assert size == [640, 480]
        await page.screenshot(path=str(artifacts_dir / "capture-page.png"))

        monitor = await clinician_page(browser, addr, viewport={"width": 1280, "height": 720})
        await monitor.goto(f"http://{addr}/monitor?stream={stream_id}")
        await _wait_video_playing(monitor, "#video")
        await monitor.wait_for_selector("#panel li.object", timeout=15_000)
        await monitor.screenshot(path=str(artifacts_dir / "monitor-of-camera.png"))
        assert len(app.state.hub.streams()) == 1
        await page.close()  # the publisher leaves: its stream ends and is cleaned up
        for _ in range(100):
            if not app.state.hub.streams():
                break
            await __import__("asyncio").sleep(0.1)
        assert app.state.hub.streams() == []
        await monitor.close()


async def test_monitor_plays_the_bundled_sample_with_findings_and_answers_a_question(browser, artifacts_dir):
    app = create_app(
        Settings(sources=[f"sample={SAMPLE_CLIP}"], model="box"),
        registry_with(box=BoxModel()),
        vlm=ScriptedVlm(),
        stream_access=fixed_token_access(),
    )
    async with running_server(app) as addr:
        page = await clinician_page(browser, addr, viewport={"width": 1280, "height": 720})
        await page.goto(f"http://{addr}/monitor")
        await _wait_video_playing(page, "#video")
        await page.wait_for_selector("#panel li.object", timeout=15_000)
        text = await page.inner_text("#panel")
        assert "box test" in text  # model name and version from findings events
        await page.fill("#ask input", "what do you see?")
        await page.click("#ask button[type=submit]")
        await page.wait_for_selector("#ask .a.done", timeout=15_000)
        assert await page.inner_text("#ask .a.done") == "I see 1 object(s): thing."
        await page.screenshot(path=str(artifacts_dir / "monitor-sample.png"))


async def test_monitor_shows_a_clear_error_for_an_unknown_stream(browser):
    app = create_app(
        Settings(sources=[f"sample={SAMPLE_CLIP}"], model="box"),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )
    async with running_server(app) as addr:
        page = await clinician_page(browser, addr)
        await page.goto(f"http://{addr}/monitor")
        await _wait_video_playing(page, "#video")  # the page's own first watch has finished
        await page.evaluate("""() => { const s = document.getElementById('streams');
                                       s.add(new Option('ghost', 'ghost')); s.value = 'ghost'; }""")
        await page.click("#watch")
        await page.wait_for_function(
            "() => document.getElementById('error').textContent.includes('unknown_stream')", timeout=10_000
        )
        assert "unknown stream 'ghost'" in await page.inner_text("#error")


async def test_a_signed_out_surgeon_signs_in_and_lands_back_on_the_monitor(browser, tmp_path, artifacts_dir):
    from scopecast.app import build_telehealth
    from telehealth.accounts import add_user
    from telehealth.records import Role
    from tests.telehealth.telehealth_testutil import PASSWORD, fast_settings

    # The shipped default: a Secure cookie, which browsers keep for http://127.0.0.1 and localhost too.
    services = build_telehealth(fast_settings(tmp_path / "telehealth", cookie_secure=True))
    add_user(services.store, "surgeon@clinic.test", PASSWORD, Role.surgeon.value)
    add_user(services.store, "pat@mail.test", PASSWORD, Role.patient.value)
    app = create_app(
        Settings(sources=[f"sample={SAMPLE_CLIP}"], model="box"),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        telehealth=services,
    )
    async with running_server(app) as addr:
        page = await (await browser.new_context(viewport={"width": 1280, "height": 720})).new_page()
        await page.goto(f"http://{addr}/monitor?stream=sample")
        assert page.url.startswith(f"http://{addr}/signin?next=")
        await page.screenshot(path=str(artifacts_dir / "signin-page.png"))
        await page.fill("#email", "surgeon@clinic.test")
        await page.fill("#password", PASSWORD)
        await page.click("#signin button[type=submit]")
        await page.wait_for_url(f"http://{addr}/monitor?stream=sample", timeout=15_000)
        await _wait_video_playing(page, "#video")  # the socket signed in with the session cookie
        await page.wait_for_selector("#panel li.object", timeout=15_000)
        await page.screenshot(path=str(artifacts_dir / "monitor-signed-in.png"))
        await page.click("#signout")  # the session ends on the server: the page goes back to sign-in
        await page.wait_for_url(f"http://{addr}/signin?next=*", timeout=15_000)
        await page.goto(f"http://{addr}/monitor")
        assert page.url.startswith(f"http://{addr}/signin?next=")

        patient = await (await browser.new_context()).new_page()
        await patient.goto(f"http://{addr}/signin?next=%2Fmonitor")
        await patient.fill("#email", "pat@mail.test")
        await patient.fill("#password", PASSWORD)
        await patient.click("#signin button[type=submit]")
        await patient.wait_for_url(f"http://{addr}/monitor", timeout=15_000)
        assert "Not available to this account" in await patient.inner_text("body")


async def test_no_page_breaks_the_content_security_policy(browser, tmp_path):
    from scopecast.app import build_telehealth
    from tests.telehealth.telehealth_testutil import fast_settings

    services = build_telehealth(fast_settings(tmp_path / "telehealth"))
    app = create_app(
        Settings(sources=[f"sample={SAMPLE_CLIP}"], model="box"),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        telehealth=services,
        stream_access=fixed_token_access(),
    )
    async with running_server(app) as addr:
        page = await clinician_page(browser, addr)
        # Every refusal by the policy fires this event in the page; Playwright's init script is not subject to it.
        await page.add_init_script("""window.__cspViolations = [];
            document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective));""")
        for path in ("/", "/signin", "/setup", "/patient", "/gp", "/consult", "/monitor", "/capture"):
            await page.goto(f"http://{addr}{path}")
            await page.wait_for_load_state("networkidle")
            assert await page.evaluate("() => window.__cspViolations") == [], path
        # The check itself works: an inline script, as an injected page would try, is refused and reported.
        await page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';
                                       document.body.appendChild(s); }""")
        await page.wait_for_function("() => window.__cspViolations.length > 0", timeout=5_000)
        assert await page.evaluate("() => window.x") is None
