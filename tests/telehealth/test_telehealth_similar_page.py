"""The GP page's "Similar cases" panel in headless Chromium: a GP opens a case, asks for a photo's similar cases,
and sees the earlier case of another of their patients (thumbnail, date, site, measurements, outcome, score) and,
with clinic-wide retrieval on, another clinician's patient marked de-identified; the panel passes axe-core."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta

import pytest
from similar_embedder import ColourHistogramEmbedder
from telehealth_testutil import PASSWORD, fast_settings, gp_opens_case
from test_telehealth_similar import trace_red
from wound_photos import healing_jpeg

from scopecast.app import build_telehealth
from telehealth.accounts import add_user
from telehealth.case_api import intake_limits
from telehealth.photo_intake import clean_photo
from telehealth.records import Actor, Role, utc_now
from telehealth.store.clinic_options import set_clinic_wide_similar_cases
from telehealth.store.invites import accept_invite, create_invite
from telehealth.store.tables import PhotoSubmissionRow
from tests.helpers.axe import assert_accessible, require_axe
from tests.helpers.servers import running_server

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def services(tmp_path, telehealth_db_url):  # type: ignore[no-untyped-def]
    made = build_telehealth(
        fast_settings(tmp_path / "telehealth", database_url=telehealth_db_url),
        segmenter_factory=lambda: trace_red,
        embedder_factory=lambda: ColourHistogramEmbedder(),
    )
    yield made
    made.similar.runner.close()
    made.store.close()


async def patient_photo(services, gp_id: int, email: str, label: str, scales_days: list[tuple[float, int]]) -> int:  # type: ignore[no-untyped-def]
    store = services.store
    patient = accept_invite(store, create_invite(store, Actor(gp_id, Role.gp), email, 3600).token, PASSWORD)
    case = store.create_case(Actor(patient.id, Role.patient), None, label)
    last = 0
    for scale, days_ago in scales_days:
        photo, _ = store.add_photo(
            Actor(patient.id, Role.patient),
            case.id,
            clean_photo(healing_jpeg(scale), intake_limits(services.settings)),
            None,
        )
        with store.db.session() as s:
            s.get(PhotoSubmissionRow, photo.id).taken_at = utc_now() - timedelta(days=days_ago)
        await services.analyses.analyse(photo.id)
        last = photo.id
    await asyncio.to_thread(services.similar.runner.wait_idle, 30)
    return case.id if last else 0


async def test_gp_opens_similar_cases_panel(services, app, artifacts_dir) -> None:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    require_axe()
    from playwright.async_api import async_playwright, expect

    services.similar.runner.start()
    gp = add_user(services.store, "gp@clinic.test", PASSWORD, Role.gp.value)
    other_gp = add_user(services.store, "gp2@clinic.test", PASSWORD, Role.gp.value)
    await patient_photo(services, gp.id, "earlier@mail.test", "right heel", [(1.0, 28), (0.6, 7)])
    await patient_photo(services, other_gp.id, "theirs@mail.test", "left ankle", [(0.95, 20)])
    case_id = await patient_photo(services, gp.id, "now@mail.test", "left heel", [(0.9, 0)])

    async with running_server(app) as host, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
            await gp_opens_case(page, host, case_id)
            card = page.locator(".photo").first
            button = card.get_by_role("button", name="Similar cases")
            await expect(button).to_have_attribute("aria-expanded", "false")
            await button.click()
            await expect(button).to_have_attribute("aria-expanded", "true")
            panel = card.locator(".similar-panel")
            await expect(panel.get_by_role("heading")).to_contain_text("Similar earlier cases")
            items = panel.locator(".similar-case")
            await expect(items).to_have_count(1)
            await expect(panel.locator(".similar-status")).to_contain_text("1 similar case among your patients")
            await expect(items.first).to_contain_text("right heel")
            await expect(items.first.locator(".similar-size")).to_contain_text("cm²")
            await expect(items.first.locator(".similar-outcome")).to_contain_text("50% smaller after 3.0 weeks")
            await expect(items.first.locator(".similar-score")).to_contain_text("Similarity")
            await page.wait_for_function(
                "[...document.querySelectorAll('.similar-case img')].every(i => i.complete && i.naturalWidth > 0)"
            )
            await assert_accessible(page, "GP case page with the similar-cases panel")

            # Clinic-wide: the other GP's patient appears too, de-identified (no site, relative dates only).
            admin = add_user(services.store, "admin@clinic.test", PASSWORD, Role.admin)
            set_clinic_wide_similar_cases(services.store, Actor(admin.id, Role.admin), True)
            await button.click()  # close
            await button.click()  # and open again: asks the server anew
            await expect(items).to_have_count(2)
            hidden = items.filter(has=page.locator(".badge", has_text="de-identified"))
            await expect(hidden).to_have_count(1)
            await expect(hidden).to_contain_text("20 days before this photo")
            await expect(hidden).not_to_contain_text("left ankle")
            await page.wait_for_function(
                "[...document.querySelectorAll('.similar-case img')].every(i => i.complete && i.naturalWidth > 0)"
            )
            await assert_accessible(page, "similar-cases panel with de-identified results")
            await page.screenshot(path=str(artifacts_dir / "gp-similar-cases.png"), full_page=True)
        finally:
            await browser.close()
