"""Reports over HTTP: AI draft from the analysis, edit, sign, amend, who may read; FHIR, PDF and de-identified export."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from wound_photos import scene_jpeg, true_area_cm2

from telehealth.store.reports import SIGNED_NOTE_START
from telehealth.store.tables import AuditEventRow, CaseExportKeyRow

SIGNED_IS_FINAL = "signed reports cannot change; amend instead"


from wound_photos import synthetic_wound_services as services  # noqa: F401  (overrides conftest's)


async def case_with_photo(world, with_marker: bool = True, case: str = "pat_a") -> int:
    r = await world.client.post(
        f"/api/cases/{world.case_ids[case]}/photos",
        files={"photo": ("w.jpg", scene_jpeg(with_marker), "image/jpeg")},
        headers=world.headers[case],
    )
    assert r.status_code == 201, r.text
    await world.services.analyses.wait_idle()
    return world.case_ids[case]


async def new_draft(world, case_id: int, who: str = "gp_a") -> dict:
    r = await world.client.post(f"/api/cases/{case_id}/reports", headers=world.headers[who])
    assert r.status_code == 201, r.text
    return r.json()


def audit_actions(world, object_type: str) -> list[str]:
    with world.services.store.db.session() as s:
        return [a.action for a in s.scalars(select(AuditEventRow).where(AuditEventRow.object_type == object_type))]


async def test_draft_edit_sign_amend(world) -> None:
    c, h = world.client, world.headers
    case_id = await case_with_photo(world)
    assert (await c.post(f"/api/cases/{case_id}/reports", headers=h["pat_a"])).status_code == 403
    assert (await c.post(f"/api/cases/{case_id}/reports", headers=h["gp_b"])).status_code == 404
    draft = await new_draft(world, case_id)
    assert (draft["status"], draft["version"], draft["notice"]) == (
        "draft",
        1,
        "AI draft — requires clinician signature",
    )
    assert draft["body"]["text"].startswith("AI DRAFT")
    assert draft["body"]["measurements"]["wound_area_cm2"] == pytest.approx(true_area_cm2(), rel=0.05)
    assert any("wound" in f for f in draft["body"]["sections"]["findings"])
    rid = draft["id"]

    # Drafts are the clinicians': the patient, another patient and another GP see nothing.
    for who in ("pat_a", "pat_b", "gp_b", "surgeon"):
        assert (await c.get(f"/api/reports/{rid}", headers=h[who])).status_code == 404, who
    r = await c.put(f"/api/reports/{rid}", json={"text": "Edited by GP: healing well."}, headers=h["gp_a"])
    assert r.status_code == 200 and r.json()["body"]["text"] == "Edited by GP: healing well."
    assert r.json()["body"]["measurements"] == draft["body"]["measurements"]  # facts are not editable
    assert (await c.put(f"/api/reports/{rid}", json={"text": "x"}, headers=h["pat_a"])).status_code == 403
    assert (await c.put(f"/api/reports/{rid}", json={"bogus": 1}, headers=h["gp_a"])).status_code == 422

    assert (await c.post(f"/api/reports/{rid}/sign", headers=h["pat_a"])).status_code == 403
    assert (await c.post(f"/api/reports/{rid}/sign", headers=h["surgeon"])).status_code == 403
    assert (await c.post(f"/api/reports/{rid}/sign", headers=h["gp_b"])).status_code == 404
    signed = await c.post(f"/api/reports/{rid}/sign", headers=h["gp_a"])
    assert signed.status_code == 200 and signed.json()["status"] == "signed" and signed.json()["notice"] is None
    again = await c.post(f"/api/reports/{rid}/sign", headers=h["gp_a"])
    assert again.status_code == 409 and "already signed" in again.json()["detail"]
    edit = await c.put(f"/api/reports/{rid}", json={"text": "sneaky"}, headers=h["gp_a"])
    assert edit.status_code == 409 and SIGNED_IS_FINAL in edit.json()["detail"]

    mine = await c.get(f"/api/reports/{rid}", headers=h["pat_a"])
    assert mine.status_code == 200 and mine.json()["body"]["text"].startswith("Edited by GP: healing well.")
    # Signed text keeps its provenance but no longer claims to await a signature.
    text = mine.json()["body"]["text"]
    assert "AI DRAFT" not in text and SIGNED_NOTE_START in text
    # Who signed, and when in the clinic's zone (UTC by default), to the minute: no microseconds.
    assert re.search(r"signed by gp_a@clinic\.test on \d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC\.$", text), text
    assert (await c.get(f"/api/reports/{rid}", headers=h["pat_b"])).status_code == 404

    amended = await c.post(f"/api/reports/{rid}/amend", json={"text": "Amended: slower healing."}, headers=h["gp_a"])
    assert amended.status_code == 201, amended.text
    a = amended.json()
    assert (a["version"], a["status"], a["amends_version_id"]) == (2, "draft", signed.json()["version_id"])
    # The patient still reads the signed version 1 until the amendment is signed.
    assert (await c.get(f"/api/reports/{rid}", headers=h["pat_a"])).json()["version"] == 1
    assert (await c.post(f"/api/reports/{rid}/amend", headers=h["gp_a"])).status_code == 409  # amend a draft: no
    assert (await c.post(f"/api/reports/{rid}/sign", headers=h["gp_a"])).json()["version"] == 2
    assert [
        x["status"] for x in (await c.get(f"/api/cases/{case_id}/reports", headers=h["pat_a"])).json()[0]["versions"]
    ] == ["signed", "signed"]
    assert audit_actions(world, "report_version").count("sign") == 2
    assert "view" in audit_actions(world, "report_version")


def observations(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]


@pytest.mark.parametrize("with_marker", [True, False])
async def test_fhir_bundle(world, with_marker: bool) -> None:
    c, h = world.client, world.headers
    case_id = await case_with_photo(world, with_marker)
    rid = (await new_draft(world, case_id))["id"]
    r = await c.get(f"/api/reports/{rid}/fhir", headers=h["gp_a"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    bundle = r.json()
    Bundle.model_validate(bundle)  # validates every contained resource
    report = bundle["entry"][0]["resource"]
    assert report["resourceType"] == "DiagnosticReport" and report["status"] == "preliminary"
    assert len(report["result"]) == len(observations(bundle))
    media = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Media"]
    assert media and media[0]["content"]["contentType"] == "image/png" and report["media"]
    quantities = [o["valueQuantity"] for o in observations(bundle) if "valueQuantity" in o]
    areas = [q for q in quantities if q.get("code") == "cm2"]
    if with_marker:
        assert len(areas) == 1 and areas[0]["system"] == "http://unitsofmeasure.org"
        assert areas[0]["value"] == pytest.approx(true_area_cm2(), rel=0.05)
        assert {"cm", "%"} <= {q.get("code") for q in quantities}
    else:
        assert areas == [] and not any(q.get("code") == "cm" for q in quantities)
        absent = [o for o in observations(bundle) if "dataAbsentReason" in o]
        assert len(absent) == 1 and "no scale marker" in absent[0]["dataAbsentReason"]["text"]
    assert (await c.post(f"/api/reports/{rid}/sign", headers=h["gp_a"])).status_code == 200
    final = (await c.get(f"/api/reports/{rid}/fhir", headers=h["pat_a"])).json()
    assert final["entry"][0]["resource"]["status"] == "final"
    assert all(o["status"] == "final" for o in observations(final))
    assert (await c.get(f"/api/reports/{rid}/fhir", headers=h["pat_b"])).status_code == 404
    assert audit_actions(world, "report_version").count("export") == 2


async def test_pdf(world) -> None:
    c, h = world.client, world.headers
    case_id = await case_with_photo(world)
    rid = (await new_draft(world, case_id))["id"]
    assert (
        await c.get(f"/api/reports/{rid}/pdf", headers=h["pat_a"])
    ).status_code == 404  # a draft: not the patient's yet
    await c.post(f"/api/reports/{rid}/sign", headers=h["gp_a"])
    r = await c.get(f"/api/reports/{rid}/pdf", headers=h["pat_a"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and len(r.content) > 5000  # the evidence image is embedded
    assert (await c.get(f"/api/reports/{rid}/pdf", headers=h["gp_b"])).status_code == 404
    assert "export" in audit_actions(world, "report_version")


async def test_deidentified_export(world) -> None:
    c, h = world.client, world.headers
    case_id = await case_with_photo(world)
    rid = (await new_draft(world, case_id))["id"]
    await c.post(f"/api/reports/{rid}/sign", headers=h["gp_a"])
    url = f"/api/cases/{case_id}/export?deidentified=true"
    assert (await c.get(url, headers=h["pat_a"])).status_code == 403
    assert (await c.get(url, headers=h["gp_b"])).status_code == 404
    assert (await c.get(f"/api/cases/{case_id}/export", headers=h["gp_a"])).status_code == 400
    r = await c.get(url, headers=h["gp_a"])
    assert r.status_code == 200, r.text
    text = r.text
    for identifier in ("@", "left heel", "pat_a", "clinic.test", "Edited"):
        assert identifier not in text
    data = r.json()
    detail = (await c.get(f"/api/cases/{case_id}", headers=h["gp_a"])).json()
    real = datetime.fromisoformat(detail["photos"][0]["received_at"])
    shifted = datetime.fromisoformat(data["photos"][0]["received_at"])
    with world.services.store.db.session() as s:
        key = s.get(CaseExportKeyRow, case_id)
        assert 30 <= abs(key.shift_days) <= 365
    assert (shifted - real).days == key.shift_days
    assert data["photos"][0]["sha256"] == detail["photos"][0]["sha256"]
    assert data["photos"][0]["analysis"]["measurement"]["area_cm2"] > 0
    assert data["signed_reports"] and "text" not in json.dumps(data["signed_reports"])
    again = (await c.get(url, headers=h["gp_a"])).json()
    assert again["photos"][0]["received_at"] == data["photos"][0]["received_at"]
    assert again["case"]["pseudonym"] == data["case"]["pseudonym"] and str(case_id) != data["case"]["pseudonym"]
    assert audit_actions(world, "wound_case").count("export") == 2


def test_signing_drops_the_draft_banner_but_keeps_provenance() -> None:
    from perception.vlm.report import DRAFT_HEADER
    from telehealth.store.reports import signed_body, signed_note

    body = {"text": f"{DRAFT_HEADER}\nFindings: wound 4.1 cm2.\nStatus: ai_draft — signature required\n", "x": 1}
    note = signed_note(
        "dr.who@clinic.test", datetime(2026, 12, 1, 23, 30, 12, 345678, tzinfo=UTC), ZoneInfo("Asia/Tokyo")
    )
    assert note == f"{SIGNED_NOTE_START} dr.who@clinic.test on 2 December 2026, 08:30 JST."
    out = signed_body(body, note)
    assert DRAFT_HEADER not in out["text"] and "ai_draft" not in out["text"]
    assert out["text"].startswith("Findings: wound 4.1 cm2.") and out["text"].endswith(note)
    assert out["x"] == 1 and body["text"].startswith(DRAFT_HEADER), "the draft itself is not modified"


def test_the_clinic_time_zone_is_checked_at_start_up(tmp_path) -> None:
    from pydantic import ValidationError
    from telehealth_testutil import fast_settings

    assert fast_settings(tmp_path, clinic_timezone="Europe/London").clinic_zone.key == "Europe/London"
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus': use an IANA name"):
        fast_settings(tmp_path, clinic_timezone="Mars/Olympus")
