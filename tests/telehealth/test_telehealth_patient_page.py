"""The /patient page in headless Chromium at phone size: log in, send a photo, see the receipt (and a clear error)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from telehealth_testutil import FUSEG_IMAGES, PASSWORD, jpeg_bytes

from telehealth.accounts import add_user
from tests.helpers.servers import running_server

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
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
            await page.click("#send")
            await expect(page.locator("#receipt")).to_be_visible(timeout=15_000)
            await expect(page.locator("#error")).to_be_hidden()
            await page.wait_for_function("document.getElementById('thumb').naturalWidth > 0")
            sha = (await page.text_content("#r-sha") or "").strip()
            stored = services.store.files.path_for(sha)
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
            await page.screenshot(path=str(artifacts_dir / "patient-upload.png"), full_page=True)
        finally:
            await browser.close()
