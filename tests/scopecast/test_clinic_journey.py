"""A clinic's day in real browsers (headless Chromium, desktop and phone): a GP signs in, adds a patient, opens a
case and invites them by QR code; the patient accepts on a phone, prints the marker page and sends photos with the
marker, then sees their history; the GP watches them arrive without a reload, puts the visits on their dates, reads
the three-visit trend, and drafts, edits and signs the report, whose PDF is checked. axe-core runs on every page
and view; screenshots land in test-artifacts/."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from perception.vlm.grounded import GroundedBackend
from scopecast.app import create_app
from scopecast.settings import Settings
from telehealth.accounts import add_user
from telehealth.records import Role
from tests.helpers.axe import assert_accessible, require_axe
from tests.helpers.servers import running_server
from tests.telehealth.telehealth_testutil import PASSWORD
from tests.telehealth.wound_photos import healing_jpeg
from tests.telehealth.wound_photos import traced_wound_services as services  # noqa: F401  (the app's telehealth)

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PATIENT_PASSWORD = "lantern orchard pebble quietly"
VISITS = (("2026-11-03", 1.0), ("2026-11-17", 0.8), (None, 0.6))  # None: today, the date the upload gives it


@pytest.fixture
def telehealth_db_url() -> None:
    return None  # SQLite under the test's folder (the telehealth tests' default)


@pytest.fixture
def clinic_app(services):  # noqa: F811
    """The whole server (pages, security headers, telehealth) with one GP account, for a browser to use."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); scripts/install.sh installs it")
    require_axe()
    add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp)
    return create_app(
        Settings(serve_sample=False, model="none"), telehealth=services, vlm=GroundedBackend(use_embeddings=False)
    )


def decode_qr(png: bytes) -> str:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    # OpenCV's ArUco-based QR detector: the classic one misses clean synthetic codes in OpenCV 5.0.
    text, _points, _raw = cv2.QRCodeDetectorAruco().detectAndDecode(image)
    return text


async def test_a_clinic_day(clinic_app, services, tmp_path, artifacts_dir) -> None:  # noqa: F811
    app = clinic_app
    from playwright.async_api import async_playwright, expect

    shots = artifacts_dir / "clinic-journey"
    shots.mkdir(parents=True, exist_ok=True)
    photos = []
    for i, (_day, scale) in enumerate(VISITS):
        path = tmp_path / f"visit-{i}.jpg"
        path.write_bytes(healing_jpeg(scale))
        photos.append(path)

    async with running_server(app) as host, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            desk = await browser.new_context(viewport={"width": 1440, "height": 900})
            await desk.grant_permissions(["clipboard-read", "clipboard-write"], origin=f"http://{host}")
            gp = await desk.new_page()

            # -- the GP signs in; the empty list says what to do ----------------------------------------------
            await gp.goto(f"http://{host}/gp")
            await expect(gp.locator("#login")).to_be_visible()
            await assert_accessible(gp, "GP sign-in")
            await gp.fill("#email", "gp@clinic.test")
            await gp.fill("#password", PASSWORD)
            await gp.click("#login button[type=submit]")
            await expect(gp.locator("#patients-empty")).to_be_visible()
            await assert_accessible(gp, "GP, no patients yet")
            await gp.screenshot(path=str(shots / "01-gp-empty.png"))

            # -- adds a patient (a mistyped NHS number first: refused with the reason) -------------------------
            await gp.click("#new-patient-btn")
            await gp.fill("#pf-name", "Ada Lovelace")
            await gp.fill("#pf-birth", "1950-12-10")
            await gp.select_option("#pf-kind", "nhs_number")
            await gp.fill("#pf-value", "943 476 5918")
            await gp.click("#pf-save")
            await expect(gp.locator("#pf-error")).to_contain_text("check digit is wrong")
            await assert_accessible(gp, "GP, add patient form with an error")
            await gp.fill("#pf-value", "943 476 5919")
            await gp.click("#pf-save")
            await expect(gp.locator("#patient-name")).to_have_text("Ada Lovelace")
            await expect(gp.locator("#patient-facts")).to_contain_text("NHS number 9434765919")
            await expect(gp.locator("#cases-empty")).to_be_visible()

            # -- opens a case and invites the patient: the QR code on screen is the link -----------------------
            await gp.fill("#cf-site", "left heel")
            await gp.select_option("#cf-type", "diabetic_foot_ulcer")
            await gp.fill("#cf-onset", "2026-10-20")
            await gp.click("#case-form button[type=submit]")
            await expect(gp.locator("#case-title")).to_have_text("Ada Lovelace — left heel, diabetic foot ulcer")
            await expect(gp.locator("#photos-empty")).to_be_visible()
            loaded = await gp.wait_for_function("() => document.body.dataset.caseLoaded")
            case_id = int(await loaded.json_value())
            await gp.click("#back-to-patient-btn")
            await gp.fill("#invite-email", "ada@mail.test")
            await gp.click("#invite-form button[type=submit]")
            await expect(gp.locator("#invite-result")).to_be_visible()
            await gp.wait_for_function("() => document.getElementById('invite-qr').naturalWidth > 0")
            invite_link = await gp.input_value("#invite-link")
            assert invite_link.startswith(f"http://{host}/patient#invite=")
            assert decode_qr(await gp.locator("#invite-qr").screenshot()) == invite_link
            await assert_accessible(gp, "GP, patient with invite")
            await gp.screenshot(path=str(shots / "02-gp-invite.png"), full_page=True)

            # -- a reload keeps the GP signed in, on the same patient -------------------------------------------
            await gp.reload()
            await expect(gp.locator("#patient-name")).to_have_text("Ada Lovelace")
            await gp.goto(f"http://{host}/gp#case={case_id}")
            await expect(gp.locator("body")).to_have_attribute("data-case-loaded", str(case_id))
            await expect(gp.locator("#live-status")).to_contain_text("Live")

            # -- the patient, on a phone: accepts, prints the marker page, sends three photos ------------------
            phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            patient = await phone.new_page()
            await patient.goto(invite_link)
            await expect(patient.locator("#accept")).to_be_visible()
            await assert_accessible(patient, "patient, accept invite")
            await patient.fill("#new-password", "password1234")
            await patient.click("#accept button[type=submit]")
            await expect(patient.locator("#error")).to_contain_text("common")
            await patient.fill("#new-password", PATIENT_PASSWORD)
            await patient.click("#accept button[type=submit]")
            await expect(patient.locator("#upload")).to_be_visible()
            await assert_accessible(patient, "patient, send a photo")
            marker = await phone.new_page()
            await marker.goto(f"http://{host}/marker")
            await expect(marker.locator("h1")).to_contain_text("marker")
            await assert_accessible(marker, "marker print page")
            await marker.screenshot(path=str(shots / "03-marker.png"), full_page=True)
            await marker.close()
            for i, path in enumerate(photos):
                await patient.set_input_files("#photo", str(path))
                await patient.click("#send")
                await expect(patient.locator("#receipt")).to_be_visible(timeout=20_000)
                # The GP's open case page shows each photo as it arrives.
                await expect(gp.locator(".photo")).to_have_count(i + 1, timeout=20_000)
            await expect(patient.locator("#history-list li")).to_have_count(3)
            await expect(patient.locator("#history-list li").first).to_contain_text("Received, waiting for your clinic")
            await assert_accessible(patient, "patient, receipt and history")
            await patient.screenshot(path=str(shots / "04-patient-receipt.png"), full_page=True)

            # -- the GP waits for the analyses, puts the first two photos on their visit dates -----------------
            await services.analyses.wait_idle()
            await expect(gp.locator(".photo[data-analysis=analysed]")).to_have_count(3, timeout=20_000)
            for photo_index, (day, _scale) in enumerate(VISITS):
                if day is None:
                    continue
                card = gp.locator(f".photo[data-photo-id='{photo_index + 1}']")
                await card.locator("input[type=date]").fill(day)
                await card.locator("form.taken-at button").click()
                await expect(card.locator(".taken-at-status")).to_have_text("saved")
            await expect(gp.locator("body")).to_have_attribute("data-trend-visits", "3", timeout=20_000)
            await expect(gp.locator("#trend-note")).to_contain_text("3 measured visits")
            await gp.wait_for_function("() => document.getElementById('trend').naturalWidth > 0")
            await assert_accessible(gp, "GP, case with three visits")
            await gp.screenshot(path=str(shots / "05-gp-case-trend.png"), full_page=True)

            # -- gives the name reports are signed with, then drafts, edits and signs ------------------------------
            await gp.click("#profile summary")
            await gp.fill("#display-name", "Dr Mary Seacole")
            await gp.click("#profile-form button[type=submit]")
            await expect(gp.locator("#profile-status")).to_contain_text("saved")
            await expect(gp.locator("#who")).to_contain_text("Dr Mary Seacole")
            await assert_accessible(gp, "GP, name on reports")
            await gp.click("#profile summary")
            await gp.click("#draft-btn")
            await expect(gp.locator("#report-status")).to_have_text("draft")
            text = await gp.input_value("#report-text")
            await gp.fill("#report-text", text + "\nPlan: continue offloading, review in two weeks.\n")
            await gp.click("#save-btn")
            await gp.click("#sign-btn")
            await expect(gp.locator("#report-status")).to_have_text("signed")
            await expect(gp.locator("#signed-info")).to_contain_text("reviewed and signed by Dr Mary Seacole")
            await gp.screenshot(path=str(shots / "06-gp-signed.png"), full_page=True)
            report_id = await gp.locator("#report-id").inner_text()
            pdf = await gp.request.get(f"http://{host}/api/reports/{report_id}/pdf")
            assert pdf.ok and (await pdf.body()).startswith(b"%PDF")
            # Page one, rendered: the patient's name and the evidence image are on it.
            page_one = pdfium.PdfDocument(await pdf.body())[0]
            page_one.render(scale=1.5).to_pil().save(shots / "07-report-page-one.png")
            page_text = page_one.get_textpage().get_text_range()
            assert "Ada Lovelace" in page_text and "NHS number 9434765919" in page_text
            assert "reviewed and signed by Dr Mary Seacole on" in page_text
            assert list(page_one.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])), "no evidence image on page one"

            # The patient's history now says the clinic reviewed the photos.
            await patient.reload()
            await expect(patient.locator("#history-list li.reviewed")).to_have_count(3)
            await patient.screenshot(path=str(shots / "08-patient-history-reviewed.png"), full_page=True)

            # -- the patients list now shows the latest area and the arrow ---------------------------------------
            await gp.goto(f"http://{host}/gp")
            item = gp.locator("#patients .patient-item").first
            await expect(item).to_contain_text("Ada Lovelace")
            await expect(item.locator(".trend")).to_contain_text("smaller")
            await assert_accessible(gp, "GP, patients list")

            # -- sign out ends the session on the server: a reload asks for the password -------------------------
            await gp.click("#signout-btn")
            await expect(gp.locator("#login")).to_be_visible()
            await gp.reload()
            await expect(gp.locator("#login")).to_be_visible()
        except BaseException:
            for n, page in enumerate(browser.contexts[0].pages if browser.contexts else []):
                await page.screenshot(path=str(shots / f"failed-{n}.png"), full_page=True)
            raise
        finally:
            await browser.close()


async def test_every_other_page_is_accessible_and_works_by_keyboard(clinic_app, artifacts_dir) -> None:
    app = clinic_app
    """axe-core on the pages the journey does not open (sign-in, setup, consult lobby, patient sign-in), and the GP
    page driven by the keyboard alone: sign in, add a patient."""
    from playwright.async_api import async_playwright, expect

    async with running_server(app) as host, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            for path, ready in (
                ("/signin", "#signin"),
                ("/setup#token=not-a-real-token", "h1"),
                ("/consult#room=abc&key=def", "#lobby"),
                ("/patient", "#login"),
            ):
                await page.goto(f"http://{host}{path}")
                await expect(page.locator(ready).first).to_be_visible()
                await assert_accessible(page, path)

            await page.goto(f"http://{host}/gp")
            await expect(page.locator("#login")).to_be_visible()
            await page.locator("#email").focus()
            await page.keyboard.type("gp@clinic.test")
            await page.keyboard.press("Tab")
            await page.keyboard.type(PASSWORD)
            await page.keyboard.press("Enter")
            await expect(page.locator("#patients-empty")).to_be_visible()
            await page.locator("#new-patient-btn").focus()
            await page.keyboard.press("Enter")
            await expect(page.locator("#pf-name")).to_be_focused()
            await page.keyboard.type("Grace Hopper")
            await page.keyboard.press("Tab")
            await page.keyboard.type("12091906")  # a date field takes the digits of its parts in order
            for _ in range(5):  # past the date's own stops and the identifier kind (MRN, the default)
                await page.keyboard.press("Tab")
                if await page.evaluate("() => document.activeElement.id") == "pf-value":
                    break
            await page.keyboard.type("MRN-77")
            await page.keyboard.press("Enter")
            await expect(page.locator("#patient-name")).to_have_text("Grace Hopper")
            await page.screenshot(path=str(artifacts_dir / "gp-keyboard-only.png"))
        finally:
            await browser.close()
