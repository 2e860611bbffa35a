"""The /patient page in headless Chromium at phone size: log in, send a photo chosen from the gallery or taken with
the guided camera (live checks, preview, Retake / Send), see a plain receipt and the history (and clear errors)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from telehealth_testutil import FUSEG_IMAGES, PASSWORD, jpeg_bytes

from telehealth.accounts import add_user
from telehealth.store.tables import PhotoSubmissionRow
from tests.helpers.fake_camera import still_y4m
from tests.helpers.servers import running_server

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
from wound_photos import synthetic_wound_services as synthetic_services  # noqa: E402, F401

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def wound_photo(tmp_path: Path) -> Path:
    photos = sorted(FUSEG_IMAGES.glob("*.jpg")) if FUSEG_IMAGES.is_dir() else []
    if photos:
        return photos[0]
    print(f"{FUSEG_IMAGES} is absent: uploading a generated image instead of a real wound photo")
    path = tmp_path / "generated.jpg"
    path.write_bytes(jpeg_bytes(42, (640, 480)))
    return path


async def test_patient_uploads_a_photo_on_a_phone(services, app, tmp_path, artifacts_dir) -> None:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    from playwright.async_api import async_playwright, expect

    add_user(services.store, "pat@mail.test", PASSWORD, "patient")
    photo = wound_photo(tmp_path)
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("this is a text file pretending to be a JPEG")

    async with running_server(app) as host, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            page = await (await browser.new_context(**PHONE)).new_page()
            await page.goto(f"http://{host}/patient")
            await page.fill("#email", "pat@mail.test")
            await page.fill("#password", "wrong password!")
            await page.click("#login button[type=submit]")
            await expect(page.locator("#error")).to_have_text("wrong email or password")
            await page.fill("#password", PASSWORD)
            await page.click("#login button[type=submit]")
            await expect(page.locator("#upload")).to_be_visible()
            assert await page.get_attribute("#photo", "capture") == "environment"
            # The form shows before the case list arrives; sending earlier would post to /api/cases//photos.
            await expect(page.locator("#case option")).to_have_count(1)

            await page.set_input_files("#photo", str(not_a_photo))
            await page.click("#send")
            await expect(page.locator("#error")).to_contain_text("not an image")

            await page.set_input_files("#photo", str(photo))
            await expect(page.locator("#preview")).to_be_visible()
            await expect(page.locator("#preview-checks li")).to_have_count(4, timeout=15_000)
            await page.click("#send")
            await expect(page.locator("#receipt")).to_be_visible(timeout=15_000)
            await expect(page.locator("#error")).to_be_hidden()
            await page.wait_for_function("document.getElementById('thumb').naturalWidth > 0")
            # Plain words for the patient: when it arrived and what happens next, no ids or hashes.
            receipt = await page.inner_text("#receipt")
            assert "arrived safely" in receipt and "What happens next" in receipt
            with services.store.db.session() as s:
                [row] = s.scalars(select(PhotoSubmissionRow)).all()
            assert row.sha256 not in await page.content() and f"#{row.id}" not in receipt
            stored = services.store.files.path_for(row.sha256)
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == row.sha256
            await expect(page.locator("#history-list li")).to_have_count(1)
            await expect(page.locator("#history-list li")).to_contain_text("Received, waiting for your clinic")
            await page.screenshot(path=str(artifacts_dir / "patient-upload.png"), full_page=True)
        finally:
            await browser.close()


async def test_guided_camera_checks_then_sends(synthetic_services, tmp_path, artifacts_dir) -> None:
    """The phone's camera (Chromium's fake one, showing a wound beside the marker): the live checks pass, the photo
    is previewed, retaken once, then sent; the history lists it."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    import cv2
    from fastapi import FastAPI
    from playwright.async_api import async_playwright, expect
    from telehealth_testutil import include_telehealth
    from wound_photos import scene

    services = synthetic_services
    app = FastAPI()
    include_telehealth(app, services)
    add_user(services.store, "pat@mail.test", PASSWORD, "patient")
    camera = still_y4m(tmp_path / "wound.y4m", cv2.cvtColor(scene(True).rgb, cv2.COLOR_RGB2BGR))
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    ]
    async with running_server(app) as host, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = await (await browser.new_context(**PHONE)).new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("console", lambda m: page_errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"http://{host}/patient")
            await page.fill("#email", "pat@mail.test")
            await page.fill("#password", PASSWORD)
            await page.click("#login button[type=submit]")
            await expect(page.locator("#history-empty")).to_be_visible()
            await page.click("#camera-btn")
            await expect(page.locator("#camera")).to_be_visible()
            await expect(page.locator("body")).to_have_attribute("data-live-ready", "true", timeout=20_000)
            for name in ("light", "focus", "marker", "wound"):
                await expect(page.locator(f"#checks li[data-check={name}]")).to_have_class("pass")
            await expect(page.locator("#shoot-btn")).to_have_text("Take the photo now")
            await page.screenshot(path=str(artifacts_dir / "patient-camera-checks.png"), full_page=True)
            await page.click("#shoot-btn")
            await expect(page.locator("#preview")).to_be_visible()
            await expect(page.locator("body")).to_have_attribute("data-camera", "closed")
            await page.click("#retake-btn")
            await expect(page.locator("#upload")).to_be_visible()
            await page.click("#camera-btn")
            await expect(page.locator("body")).to_have_attribute("data-live-ready", "true", timeout=20_000)
            await page.click("#shoot-btn")
            try:
                await expect(page.locator("#preview")).to_be_visible(timeout=20_000)
            except AssertionError:
                raise AssertionError(f"no preview after the second shot; page errors: {page_errors}") from None
            await expect(page.locator("body")).to_have_attribute("data-preview-ready", "true", timeout=20_000)
            await page.click("#send")
            await expect(page.locator("#receipt")).to_be_visible(timeout=15_000)
            await expect(page.locator("#history-list li")).to_have_count(1)
            await page.screenshot(path=str(artifacts_dir / "patient-camera-sent.png"), full_page=True)
        finally:
            await browser.close()
    with services.store.db.session() as s:
        [row] = s.scalars(select(PhotoSubmissionRow)).all()
    assert (row.width, row.height) == (800, 600)  # the camera's full frame, not the checks' preview size
