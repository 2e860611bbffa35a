"""A video consult with two real browsers: a GP on a desktop and a patient on a phone, each with a fake camera.

The GP starts the consult from the case page, the call window joins with the GP's session; the patient opens the
link. Checked: each side sees the other's camera (the GP with the AI panel, the patient plainly), sound reaches the
GP, the GP asks the VLM and captures a frame into the case, the patient reloads and is back in the call, leaves and
rejoins, joins again from their own patient page (no link), and the GP ends the consult. The GP records part of
the call: refused without consent, then with it, both sides told. Screenshots of both sides are saved.
"""

from __future__ import annotations

import asyncio
import shutil

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from perception.vlm.grounded import GroundedBackend
from scopecast.app import build_telehealth, create_app
from scopecast.settings import Settings
from telehealth.accounts import add_user
from telehealth.recording_records import RecordingPurpose
from telehealth.records import Actor, Role
from telehealth.store.invites import accept_invite, create_invite
from telehealth.store.recording_consents import record_consent
from telehealth.store.recordings import list_recordings
from telehealth.store.tables import PhotoSubmissionRow
from tests.helpers.fake_camera import still_y4m
from tests.helpers.servers import running_server
from tests.telehealth.telehealth_testutil import PASSWORD, fast_settings, gp_opens_case
from tests.telehealth.wound_photos import scene

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
GP_CAMERA_BGR = (200, 140, 60)  # the GP's fake camera is one flat colour, so the patient's view can be checked exactly

# Mean colour and spread of what a <video> shows, read through a canvas.
VIDEO_STATS = """(selector) => {
  const v = document.querySelector(selector);
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas'); c.width = 160; c.height = 120;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0, 160, 120);
  const d = g.getImageData(0, 0, 160, 120).data;
  let r = 0, gr = 0, b = 0, n = d.length / 4;
  for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
  r /= n; gr /= n; b /= n;
  let spread = 0;
  for (let i = 0; i < d.length; i += 4) spread += Math.abs(d[i] - r) + Math.abs(d[i + 1] - gr) + Math.abs(d[i + 2] - b);
  return { r, g: gr, b, spread: spread / n, width: v.videoWidth, height: v.videoHeight };
}"""

AUDIO_PACKETS = """async () => {
  const stats = await window.scopecastSession.pc.getStats();
  let packets = 0;
  stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') packets += s.packetsReceived; });
  return packets;
}"""

ARGS = [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


CALL_CONTROLS = (
    "#remote",
    "#local",
    "#mute-btn",
    "#camera-btn",
    "#switch-btn",
    "#overlay-btn",
    "#capture-btn",
    "#leave-btn",
    "#end-btn",
)


async def _inside_viewport(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    """The element is shown and lies wholly inside the window, as it stands (no scrolling)."""
    return await page.evaluate(
        """(sel) => { const e = document.querySelector(sel); if (!e || e.hidden) return false;
        const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0
        && r.right <= window.innerWidth && r.bottom <= window.innerHeight; }""",
        selector,
    )


async def _state(page, state: str, timeout: float = 30_000) -> None:
    # Function form, not an expression string: Playwright would eval() a string, which the pages' CSP forbids.
    await page.wait_for_function(f"() => document.body?.dataset.callState === '{state}'", timeout=timeout)


async def _playing(page, selector: str = "#remote") -> None:
    await page.wait_for_function(
        f"() => {{ const v = document.querySelector('{selector}'); return v && v.videoWidth > 0 && v.currentTime > 0.5; }}",
        timeout=30_000,
    )


async def _shows_gp_camera(page) -> bool:
    stats = await page.evaluate(VIDEO_STATS, "#remote")
    if stats is None:
        return False
    b, g, r = GP_CAMERA_BGR
    return abs(stats["r"] - r) < 15 and abs(stats["g"] - g) < 15 and abs(stats["b"] - b) < 15 and stats["spread"] < 15


async def _wait_for(predicate, timeout_s: float = 20.0) -> bool:
    for _ in range(int(timeout_s / 0.25)):
        if await predicate():
            return True
        await asyncio.sleep(0.25)
    return False


async def test_gp_and_patient_consult_in_two_browsers(tmp_path, artifacts_dir) -> None:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); scripts/install.sh installs it")
    from playwright.async_api import async_playwright, expect

    services = build_telehealth(
        fast_settings(tmp_path / "telehealth")
    )  # the shipped ONNX wound model analyses captures
    store = services.store
    gp = add_user(store, "gp@clinic.test", PASSWORD, Role.gp.value)
    patient = accept_invite(store, create_invite(store, Actor(gp.id, Role.gp), "pat@mail.test", 3600).token, PASSWORD)
    case = store.create_case(Actor(patient.id, Role.patient), None, "left heel")
    # The shipped wound model runs on the patient's video; the grounded VLM answers the GP from its findings.
    app = create_app(
        Settings(serve_sample=False, model="none", consult_model="wound"),
        telehealth=services,
        vlm=GroundedBackend(use_embeddings=False),
    )

    patient_camera = still_y4m(
        tmp_path / "patient.y4m", cv2.resize(cv2.cvtColor(scene(True).rgb, cv2.COLOR_RGB2BGR), (640, 480))
    )
    gp_camera = still_y4m(tmp_path / "gp.y4m", np.full((480, 640, 3), GP_CAMERA_BGR, np.uint8))

    async with running_server(app) as addr, async_playwright() as pw:
        gp_browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, f"--use-file-for-fake-video-capture={gp_camera}"]
        )
        patient_browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, f"--use-file-for-fake-video-capture={patient_camera}"]
        )
        try:
            # -- the GP starts a consult from the case page; the call window gets the session from it ------------
            # A 1366x768 laptop, the smallest screen a clinic runs this on.
            gp_page = await (await gp_browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
            await gp_opens_case(gp_page, addr, case.id)
            await gp_page.click("#consult-btn")
            await expect(gp_page.locator("#consult-info")).to_be_visible()
            patient_link = await gp_page.input_value("#patient-link")
            assert patient_link.startswith(f"http://{addr}/consult#room=") and "&key=" in patient_link
            async with gp_page.context.expect_page() as popup:
                await gp_page.click("#open-call-btn")
            call = await popup.value
            await _state(call, "waiting")
            await expect(call.locator("#call-status")).to_have_text("Waiting for the patient to join…")

            # -- the patient opens the link on a phone and joins --------------------------------------------------
            phone = await patient_browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
            )
            patient_page = await phone.new_page()
            await patient_page.goto(patient_link)
            await expect(patient_page.locator("#lobby")).to_be_visible()
            await expect(patient_page.locator("aside")).to_be_hidden()
            await patient_page.click("#join-btn")
            await _state(patient_page, "in-call")
            await _state(call, "in-call")

            # The GP sees the patient's camera with the AI panel; the patient sees the GP's camera, plainly.
            await _playing(call)
            await _playing(patient_page)
            # The synthetic scene is no real wound photo: the wound model's content gate says so, in amber, and
            # withholds its findings instead of outlining a "wound" on it.
            await expect(call.locator("#findings [data-role=status]")).to_have_text(
                "Content not recognised: content does not look like a wound photo: wound model paused", timeout=20_000
            )
            await expect(call.locator("#findings [data-role=light]")).to_have_class("light amber")
            await expect(call.locator("#findings [data-role=model]")).to_contain_text("wound")
            await expect(call.locator("#findings li.withheld")).to_have_text(
                "withheld: this frame does not look like a wound photo"
            )
            assert await _wait_for(lambda: _shows_gp_camera(patient_page)), await patient_page.evaluate(
                VIDEO_STATS, "#remote"
            )
            gp_view = await call.evaluate(VIDEO_STATS, "#remote")
            assert gp_view["spread"] > 20, "the GP should see the patient's wound picture, not a flat card"
            assert (gp_view["width"], gp_view["height"]) == (640, 480)
            await expect(patient_page.locator("#findings")).to_be_hidden()
            assert await _wait_for(lambda: _audio(call)), "no sound reached the GP"

            # The GP asks the VLM about the frame, and captures it into the case.
            await call.fill("#ask [data-role=question]", "what do you see?")
            await call.click("#ask button[type=submit]")
            answer = call.locator("#ask .a.done")
            await expect(answer).to_have_count(1, timeout=20_000)
            assert len(await answer.inner_text()) > 10
            await call.click("#capture-btn")
            captured = call.locator("#captures li.capture")
            await expect(captured).to_have_count(1, timeout=20_000)
            # The case page, open in the GP's first window, shows the capture without a reload.
            await expect(gp_page.locator(".photo")).to_have_count(1, timeout=20_000)
            await expect(gp_page.locator(".photo").first).to_contain_text("captured in a consult")

            # Both videos and every control fit a 1366x768 and a 1440x900 screen, without scrolling.
            for width, height in ((1366, 768), (1440, 900)):
                await call.set_viewport_size({"width": width, "height": height})
                for selector in CALL_CONTROLS:
                    assert await _inside_viewport(call, selector), (selector, width, height)
                await call.screenshot(path=str(artifacts_dir / f"consult-gp-{width}x{height}.png"))
            # The GP's own switches: the overlay off and on (the server answers), mute and camera off.
            await _state(call, "in-call")
            await call.click("#overlay-btn")
            await expect(call.locator("#overlay-btn")).to_have_text("AI overlay: off", timeout=15_000)
            await expect(call.locator("body")).to_have_attribute("data-overlay", "off")
            await call.click("#overlay-btn")
            await expect(call.locator("body")).to_have_attribute("data-overlay", "on")
            await call.click("#mute-btn")
            await expect(call.locator("#mute-btn")).to_have_attribute("aria-pressed", "true")
            assert (
                await call.evaluate("() => document.getElementById('local').srcObject.getAudioTracks()[0].enabled")
                is False
            )
            await call.click("#mute-btn")
            await call.click("#camera-btn")
            await expect(call.locator("#camera-btn")).to_have_text("Camera on")
            await call.click("#camera-btn")
            await call.wait_for_function("() => document.querySelector('#captures img').naturalWidth > 0")
            await call.screenshot(path=str(artifacts_dir / "consult-gp.png"))
            await patient_page.screenshot(path=str(artifacts_dir / "consult-patient-phone.png"))
            with store.db.session() as s:
                photos = s.scalars(select(PhotoSubmissionRow).where(PhotoSubmissionRow.case_id == case.id)).all()
                assert [(p.uploaded_by, p.width, p.height) for p in photos] == [(gp.id, 640, 480)]

            # -- recording: refused in words without consent; with it, both sides are told, and it is listed -------
            await call.click("#record-btn")
            await expect(call.locator("#error")).to_contain_text(f"no recording consent on case {case.id}")
            await expect(patient_page.locator("#recording-notice")).to_be_hidden()
            record_consent(store, Actor(gp.id, Role.gp), case.id, RecordingPurpose.clinical_record, True, False)
            await call.click("#record-btn")
            for page in (call, patient_page):
                await expect(page.locator("#recording-notice")).to_have_text("● This consult is being recorded")
            await expect(call.locator("#record-btn")).to_be_hidden()
            await expect(patient_page.locator("#record-stop-btn")).to_be_hidden()  # the patient cannot stop it
            await asyncio.sleep(2.0)
            await call.click("#record-stop-btn")
            for page in (call, patient_page):
                await expect(page.locator("body")).to_have_attribute("data-recording", "stopped")
                await expect(page.locator("#recording-notice")).to_be_hidden()
            await expect(call.locator("#record-btn")).to_be_visible()
            [(recorded, _who)] = list_recordings(store, Actor(gp.id, Role.gp), case.id)
            assert recorded.ended_at is not None and recorded.frames and recorded.frames >= 10
            assert not recorded.has_audio  # the consent covered the patient's video, not their sound

            # -- the patient's page reloads (a dropped phone connection): back in the same call -----------------
            await patient_page.reload()
            await _state(call, "waiting")
            await patient_page.click("#join-btn")
            await _state(patient_page, "in-call")
            await _state(call, "in-call")
            assert await _wait_for(lambda: _shows_gp_camera(patient_page))

            # The patient leaves, then comes back with the button; the GP ends the consult for both.
            await patient_page.click("#leave-btn")
            await _state(patient_page, "left")
            await _state(call, "waiting")
            await patient_page.click("#rejoin-btn")
            await _state(call, "in-call")

            # Without the link: the patient's own page offers the open consult and joins with their session.
            await patient_page.goto(f"http://{addr}/patient")
            await _state(call, "waiting")
            await patient_page.fill("#email", "pat@mail.test")
            await patient_page.fill("#password", PASSWORD)
            await patient_page.click("#login button[type=submit]")
            await patient_page.click("#consult-link")
            await patient_page.click("#join-btn")
            await _state(patient_page, "in-call")
            await _state(call, "in-call")
            # Ending asks first; "Keep the call" keeps it.
            await call.click("#end-btn")
            await expect(call.locator("#end-dialog")).to_be_visible()
            await call.click("#end-cancel-btn")
            await _state(call, "in-call")
            await call.click("#end-btn")
            await call.click("#end-confirm-btn")
            await _state(call, "ended")
            await _state(patient_page, "ended")
            await expect(patient_page.locator("#ended-text")).to_have_text("The consult has ended. Thank you.")

            # The link is dead now: opening it again says so.
            await patient_page.goto("about:blank")
            await patient_page.goto(patient_link)
            await patient_page.click("#join-btn")
            await _state(patient_page, "ended")
            await expect(patient_page.locator("#ended-text")).to_have_text("this consult has ended")
            await patient_page.screenshot(path=str(artifacts_dir / "consult-patient-ended.png"))
            await patient_page.goto(f"http://{addr}/patient")  # still signed in in this tab: no open consult offered
            await expect(patient_page.locator("body")).to_have_attribute("data-consults-checked", "1")
            await expect(patient_page.locator("#consult")).to_be_hidden()
            for _ in range(100):
                if not app.state.hub.all_streams():
                    break
                await asyncio.sleep(0.1)
            assert app.state.hub.all_streams() == []
        finally:
            await gp_browser.close()
            await patient_browser.close()


async def _audio(page) -> bool:
    return await page.evaluate(AUDIO_PACKETS) > 20
