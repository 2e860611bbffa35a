"""Page one of a signed report, rendered as a clinician sees it: the patient's name, date of birth and identifier,
the visit date and the wound, the measurements beside the previous visit with the change, the evidence image, the
tissue mix and risk signals, and the signed note; no pixel coordinates or raw scores."""

from __future__ import annotations

import re

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from wound_photos import healing_jpeg
from wound_photos import traced_wound_services as services  # noqa: F401  (overrides conftest's)

ADA = {
    "full_name": "Ada Lovelace",
    "birth_date": "1950-12-10",
    "identifier_kind": "nhs_number",
    "identifier_value": "9434765919",
}


async def signed_report_pdf(world) -> bytes:
    c, gp = world.client, world.headers["gp_a"]
    assert (await c.put("/api/me", json={"display_name": "Dr Jane Smith"}, headers=gp)).status_code == 200
    patient = (await c.post("/api/patients", json=ADA, headers=gp)).json()
    case = (
        await c.post(
            "/api/cases",
            json={"patient_id": patient["id"], "label": "left heel", "wound_type": "diabetic_foot_ulcer"},
            headers=gp,
        )
    ).json()
    for day, scale in (("2026-11-03", 1.0), ("2026-11-17", 0.7)):
        r = await c.post(
            f"/api/cases/{case['id']}/photos", files={"photo": ("w.jpg", healing_jpeg(scale), "image/jpeg")}, headers=gp
        )
        assert r.status_code == 201, r.text
        await c.put(f"/api/photos/{r.json()['id']}/taken-at", json={"taken_at": day}, headers=gp)
    await world.services.analyses.wait_idle()
    report = (await c.post(f"/api/cases/{case['id']}/reports", headers=gp)).json()
    assert not re.search(r"\d+ ?px|=====|confidence \d", report["body"]["text"]), report["body"]["text"]
    await c.put(
        f"/api/reports/{report['id']}",
        json={"text": report["body"]["text"] + "\nPlan: offload, review in 2 weeks."},
        headers=gp,
    )
    signed = await c.post(f"/api/reports/{report['id']}/sign", headers=gp)
    assert signed.status_code == 200, signed.text
    pdf = await c.get(f"/api/reports/{report['id']}/pdf", headers=gp)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    return pdf.content


async def test_page_one_is_what_a_gp_signs(world, artifacts_dir) -> None:
    data = await signed_report_pdf(world)
    (artifacts_dir / "report-signed.pdf").write_bytes(data)
    document = pdfium.PdfDocument(data)
    first = document[0]
    text = first.get_textpage().get_text_range()
    for expected in (
        "Ada Lovelace",
        "10 December 1950",
        "NHS number 9434765919",
        "17 November 2026",  # the visit date: when the photo was taken
        "left heel, diabetic foot ulcer",
        "Previous visit",
        "3 November 2026",
        "Evidence image",
        "Tissue mix",
        "AI-assisted draft, reviewed and signed by Dr Jane Smith on",
    ):
        assert expected in text, (expected, text[:1500])
    # The area fell to about half: the change column says so.
    change = re.search(r"Area\s+[\d.]+ cm²\s+[\d.]+ cm²\s+([+-]\d+)%", text)
    assert change is not None, text
    assert -60 < int(change.group(1)) < -40
    assert not re.search(r"\d+ ?px\b|=====", text)
    images = list(first.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]))
    assert images, "the evidence image must be on page one"
    first.render(scale=1.5).to_pil().save(artifacts_dir / "report-page-one.png")
    # The clinician's findings and plan start on page one and end where the text ends.
    everything = "".join(page.get_textpage().get_text_range() for page in document)
    assert "Clinician's findings and plan" in text and "Plan: offload, review in 2 weeks." in everything
