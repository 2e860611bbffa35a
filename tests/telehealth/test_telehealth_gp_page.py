"""The /gp case page in headless Chromium: sign in, open a case, see the analysis and trend, draft, edit and sign."""

from __future__ import annotations

import shutil

import pytest
from telehealth_testutil import PASSWORD, gp_opens_case
from wound_photos import scene_jpeg

from telehealth.accounts import add_user
from telehealth.case_api import intake_limits
from telehealth.photo_intake import clean_photo
from telehealth.records import Actor, Role
from telehealth.store.invites import accept_invite, create_invite
from tests.helpers.servers import running_server

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


from wound_photos import synthetic_wound_services as services  # noqa: F401  (overrides conftest's)


async def test_gp_reviews_and_signs(services, app, artifacts_dir) -> None:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    from playwright.async_api import async_playwright, expect

    store = services.store
    gp = add_user(store, "gp@clinic.test", PASSWORD, Role.gp.value)
    made = create_invite(store, Actor(gp.id, Role.gp), "pat@mail.test", 3600)
    patient = accept_invite(store, made.token, PASSWORD)
    case = store.create_case(Actor(patient.id, Role.patient), None, "left heel")
    for with_marker in (False, True):
        photo, _ = store.add_photo(
            Actor(patient.id, Role.patient),
            case.id,
            clean_photo(scene_jpeg(with_marker), intake_limits(services.settings)),
            None,
        )
        await services.analyses.analyse(photo.id)

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
            page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
            await gp_opens_case(page, host, case.id)
            cards = page.locator(".photo")
            await expect(cards).to_have_count(2)
            # Newest first: the photo with the marker was sent last.
            await expect(cards.nth(1).locator(".area")).to_have_text("not measured: no scale marker")
            await expect(cards.nth(0).locator(".area")).to_contain_text("cm²")
            await expect(cards.nth(0).locator(".tissue")).to_contain_text("granulation")
            await expect(cards.nth(0).locator(".risk")).to_contain_text("Risk flag")
            await expect(page.locator("#trend-note")).to_contain_text("Too few measured visits for a trend")
            # The GP moves the first photo to an earlier visit: saved, and the trend is read again.
            first = cards.nth(1).locator("form.taken-at")
            await first.locator("input[type=date]").fill("2026-11-02")
            await first.locator("button").click()
            await expect(first.locator(".taken-at-status")).to_have_text("saved")
            future = cards.nth(0).locator("form.taken-at")
            await future.locator("input[type=date]").evaluate(
                "i => { i.removeAttribute('max'); i.value = '2999-01-01'; }"
            )
            await future.locator("button").click()
            await expect(future.locator(".taken-at-status")).to_contain_text("cannot be taken in the future")
            await page.wait_for_function(
                "[...document.querySelectorAll('img.evidence'), document.getElementById('trend')]"
                ".every(i => i.complete && i.naturalWidth > 0)"
            )
            await page.screenshot(path=str(artifacts_dir / "gp-case.png"), full_page=True)

            await page.click("#draft-btn")
            await expect(page.locator("#report-notice")).to_have_text("AI draft — requires clinician signature")
            await expect(page.locator("#report-status")).to_have_text("draft")
            text = await page.input_value("#report-text")
            assert text.startswith("AI DRAFT") and "Wound area: " in text and "cm²" in text
            await page.fill("#report-text", text + "\nReviewed by GP: continue current dressing.\n")
            await page.click("#save-btn")
            await page.click("#sign-btn")
            await expect(page.locator("#report-status")).to_have_text("signed")
            await expect(page.locator("#report-notice")).to_be_hidden()
            await expect(page.locator("#signed-info")).to_contain_text("signed")
            await expect(page.locator("#error")).to_be_hidden()
            await page.screenshot(path=str(artifacts_dir / "report-signed.png"), full_page=True)
        finally:
            await browser.close()

    from telehealth.store.reports import case_reports

    [view] = case_reports(store, Actor(gp.id, Role.gp), case.id)
    assert view.current.status.value == "signed"
    assert "Reviewed by GP: continue current dressing." in view.current.body["text"]
