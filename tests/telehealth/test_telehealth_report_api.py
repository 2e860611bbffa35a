"""Reports over HTTP: AI draft from the analysis, edit, sign, amend, who may read; FHIR, PDF and de-identified export."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from wound_photos import scene_jpeg, true_area_cm2

from telehealth.report_signing import verify_report_pdf
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


async def identify_patient(world, patient: str = "pat_a", gp: str = "gp_a") -> None:
    """Give the world's patient a name, birth date and NHS number (the fixture's invited patients have none)."""
    from datetime import date

    from telehealth.patient_identity import clean_identity
    from telehealth.records import Actor, IdentifierKind, Role
    from telehealth.store.patients import update_patient
    from telehealth.store.tables import UserRow

    store = world.services.store
    with store.db.session() as s:
        gp_id = s.scalar(select(UserRow.id).where(UserRow.email == f"{gp}@clinic.test"))
    identity = clean_identity("Ann Example", date(1950, 2, 3), IdentifierKind.nhs_number, "9434765919")
    update_patient(store, Actor(gp_id, Role.gp), world.patient_ids[patient], identity)


async def verified(world, pdf: bytes):
    """The PDF checked against the clinic's certificate, on a worker thread as the server would (pyhanko runs its
    own event loop)."""

    return await asyncio.to_thread(verify_report_pdf, pdf, [world.services.sealer.key.certificate])


@pytest.mark.parametrize("with_marker", [True, False])
async def test_fhir_bundle(world, with_marker: bool) -> None:
    from fhir_profiles import (
        by_url,
        check_device_observation,
        check_document,
        check_wound_bed,
        check_wound_size,
        resources,
    )

    c, h = world.client, world.headers
    case_id = await case_with_photo(world, with_marker)
    rid = (await new_draft(world, case_id))["id"]
    draft = await c.get(f"/api/reports/{rid}/fhir", headers=h["gp_a"])
    assert draft.status_code == 409 and "not signed yet" in draft.json()["detail"]
    assert (await c.post(f"/api/reports/{rid}/sign", headers=h["gp_a"])).status_code == 200
    unidentified = await c.get(f"/api/reports/{rid}/fhir", headers=h["gp_a"])
    assert unidentified.status_code == 409 and "no MRN or NHS number" in unidentified.json()["detail"]
    await identify_patient(world)

    r = await c.get(f"/api/reports/{rid}/fhir", headers=h["gp_a"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    bundle = r.json()
    Bundle.model_validate(bundle)
    check_document(bundle)
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert kinds == {
        "Composition",
        "Patient",
        "Practitioner",
        "Device",
        "DiagnosticReport",
        "Observation",
        "Media",
        "Provenance",
    }
    urls = by_url(bundle)
    (composition,) = resources(bundle, "Composition")
    (patient,) = resources(bundle, "Patient")
    (practitioner,) = resources(bundle, "Practitioner")
    (device,) = resources(bundle, "Device")
    (report,) = resources(bundle, "DiagnosticReport")
    (provenance,) = resources(bundle, "Provenance")
    assert patient["identifier"] == [
        {"use": "official", "system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}
    ]
    assert patient["birthDate"] == "1950-02-03" and patient["name"][0]["text"] == "Ann Example"
    assert practitioner["telecom"] == [{"system": "email", "value": "gp_a@clinic.test"}]
    assert device["deviceName"][0]["name"] == "synthetic-mask" and device["version"][0]["value"] == "1"

    # Composition: attested by the signing clinician at the signing time; the report is its section's first entry.
    signed_at = composition["attester"][0]["time"]
    assert composition["status"] == "final" and composition["attester"][0]["mode"] == "legal"
    assert urls[composition["attester"][0]["party"]["reference"]] == practitioner
    assert urls[composition["section"][0]["entry"][0]["reference"]] == report
    assert bundle["timestamp"] == composition["date"] == signed_at

    # DiagnosticReport: final, its presented form exactly the signed PDF served for the report, and that verifies.
    assert report["status"] == "final" and report["issued"] == signed_at
    (form,) = report["presentedForm"]
    served = await c.get(f"/api/reports/{rid}/pdf", headers=h["pat_a"])
    pdf = base64.b64decode(form["data"])
    assert form["contentType"] == "application/pdf" and pdf == served.content and form["size"] == len(pdf)
    assert served.headers["x-signed-pdf-sha256"] == hashlib.sha256(pdf).hexdigest() in form["title"]
    assert base64.b64decode(form["hash"]) == hashlib.sha1(pdf).digest()
    assert (await verified(world, pdf)).valid

    # Observations: the IG's WoundSize and WoundBed panels, then the local redness index, all device-derived.
    detail = (await c.get(f"/api/cases/{case_id}", headers=h["gp_a"])).json()
    taken_at = datetime.fromisoformat(detail["photos"][0]["taken_at"])
    results = [urls[ref["reference"]] for ref in report["result"]]
    size, bed = results[0], results[1]
    for obs in resources(bundle, "Observation"):
        check_device_observation(obs, device, taken_at, "left heel")
        assert urls[obs["device"]["reference"]] == device
    check_wound_size(size)
    components = {comp["code"]["coding"][0]["code"]: comp for comp in size["component"]}
    if with_marker:
        assert components["89260-4"]["valueQuantity"]["value"] == pytest.approx(true_area_cm2(), rel=0.05)
        assert components["39126-8"]["valueQuantity"]["value"] > components["39125-0"]["valueQuantity"]["value"] > 0
    else:
        assert set(components) == {"39126-8", "39125-0", "89260-4"}
        assert all("no scale marker" in comp["dataAbsentReason"]["text"] for comp in components.values())
    members = check_wound_bed(bed, bundle)
    if with_marker:  # granulation, slough, necrotic and the unclassified rest: the whole wound bed
        assert len(members) == 4
        assert sum(m["component"][0]["valueQuantity"]["value"] for m in members) == pytest.approx(100, abs=0.01)
    else:  # no marker, no colour reference: the tissue mix is absent, with the analysis's reason
        assert members == [] and bed["dataAbsentReason"]["text"]

    # Provenance: the clinician as author and attester, the model (with its version) as the contributing device.
    agents = {a["type"]["coding"][0]["code"]: urls[a["who"]["reference"]] for a in provenance["agent"]}
    assert agents == {"author": practitioner, "attester": practitioner, "performer": device}
    assert {t["reference"] for t in provenance["target"]} >= {ref["reference"] for ref in report["result"]}
    media = resources(bundle, "Media")
    assert [m["content"]["contentType"] for m in media] == ["image/jpeg", "image/png"]
    assert all(datetime.fromisoformat(m["createdDateTime"]) == taken_at for m in media)

    # The same signed version exports to the same document; the patient reads it; another patient cannot.
    again = await c.get(f"/api/reports/{rid}/fhir", headers=h["pat_a"])
    assert again.json() == bundle
    assert (await c.get(f"/api/reports/{rid}/fhir", headers=h["pat_b"])).status_code == 404
    assert audit_actions(world, "report_version").count("export") == 3  # two FHIR exports and one PDF


async def test_pdf(world) -> None:

    c, h = world.client, world.headers
    case_id = await case_with_photo(world)
    rid = (await new_draft(world, case_id))["id"]
    # A draft: not the patient's yet; the clinician gets the unsigned PDF, marked as a draft, with no signature.
    assert (await c.get(f"/api/reports/{rid}/pdf", headers=h["pat_a"])).status_code == 404
    draft = await c.get(f"/api/reports/{rid}/pdf", headers=h["gp_a"])
    assert draft.status_code == 200 and "x-signed-pdf-sha256" not in draft.headers
    check = await verified(world, draft.content)
    assert not check.valid and check.reason == "the PDF carries no signature"

    await c.post(f"/api/reports/{rid}/sign", headers=h["gp_a"])
    r = await c.get(f"/api/reports/{rid}/pdf", headers=h["pat_a"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and len(r.content) > 5000  # the evidence image is embedded
    check = await verified(world, r.content)
    assert check.valid and check.signer_name == "gp_a@clinic.test" and check.development_key, check
    signed_at = datetime.fromisoformat((await c.get(f"/api/reports/{rid}", headers=h["pat_a"])).json()["signed_at"])
    assert check.signed_at is not None and abs((check.signed_at - signed_at).total_seconds()) < 5
    # Stored once at signing: every later read is the same bytes, named by their sha256.
    again = await c.get(f"/api/reports/{rid}/pdf?version=1", headers=h["gp_a"])
    assert again.content == r.content and r.headers["x-signed-pdf-sha256"] == hashlib.sha256(r.content).hexdigest()
    assert (await c.get(f"/api/reports/{rid}/pdf?version=7", headers=h["gp_a"])).status_code == 404
    assert (await c.get(f"/api/reports/{rid}/pdf", headers=h["gp_b"])).status_code == 404
    assert "export" in audit_actions(world, "report_version")


async def test_an_amendment_is_a_new_signed_pdf_naming_the_version_it_replaces(world) -> None:
    import io

    from fhir_profiles import check_document, resources
    from pyhanko.pdf_utils.reader import PdfFileReader

    c, h = world.client, world.headers
    await identify_patient(world)
    case_id = await case_with_photo(world)
    rid = (await new_draft(world, case_id))["id"]
    await c.post(f"/api/reports/{rid}/sign", headers=h["gp_a"])
    first_pdf = (await c.get(f"/api/reports/{rid}/pdf", headers=h["gp_a"])).content
    first_doc = (await c.get(f"/api/reports/{rid}/fhir", headers=h["gp_a"])).json()
    await c.post(f"/api/reports/{rid}/amend", json={"text": "Amended: slower healing."}, headers=h["gp_a"])
    # While the amendment is a draft, the export stays the signed version 1.
    assert (await c.get(f"/api/reports/{rid}/fhir", headers=h["gp_a"])).json() == first_doc
    assert (await c.post(f"/api/reports/{rid}/sign", headers=h["gp_a"])).json()["version"] == 2

    second_pdf = (await c.get(f"/api/reports/{rid}/pdf", headers=h["gp_a"])).content
    assert second_pdf != first_pdf
    assert (await c.get(f"/api/reports/{rid}/pdf?version=1", headers=h["gp_a"])).content == first_pdf
    check = await verified(world, second_pdf)
    assert check.valid, check
    reader = PdfFileReader(io.BytesIO(second_pdf))
    first_sha = hashlib.sha256(first_pdf).hexdigest()
    assert reader.trailer["/Info"]["/Subject"] == f"Replaces version 1 (signed PDF sha256 {first_sha})"
    assert "replaces version 1" in str(reader.embedded_signatures[0].sig_object["/Reason"])

    second_doc = (await c.get(f"/api/reports/{rid}/fhir", headers=h["gp_a"])).json()
    check_document(second_doc)
    (composition,) = resources(second_doc, "Composition")
    assert composition["status"] == "amended" and resources(second_doc, "DiagnosticReport")[0]["status"] == "amended"
    assert composition["relatesTo"] == [{"code": "replaces", "targetIdentifier": first_doc["identifier"]}]
    assert second_doc["identifier"] != first_doc["identifier"]


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


def test_patient_identifiers_map_to_their_systems() -> None:
    from telehealth.errors import Conflict
    from telehealth.fhir_export import patient_identifier
    from telehealth.records import IdentifierKind, PatientIdentity

    mrn = PatientIdentity("Bo B", None, IdentifierKind.mrn, "A12345")
    assert patient_identifier(mrn, "urn:oid:1.2.3.4") == {
        "use": "usual",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "code": "MR",
                    "display": "Medical record number",
                }
            ]
        },
        "system": "urn:oid:1.2.3.4",
        "value": "A12345",
    }
    with pytest.raises(Conflict, match="no MRN or NHS number recorded"):
        patient_identifier(PatientIdentity(None, None, None, None), "urn:scopecast:mrn")


async def test_a_version_signed_before_signed_pdfs(world) -> None:
    """Signed without a seal, as versions signed before migration 0007 were: its PDF is rendered (unsigned), and the
    FHIR export, which must present a signed PDF, asks for an amendment."""
    from telehealth.records import Actor, Role
    from telehealth.store.reports import latest_version_id, sign
    from telehealth.store.tables import UserRow

    c, h = world.client, world.headers
    await identify_patient(world)
    case_id = await case_with_photo(world)
    rid = (await new_draft(world, case_id))["id"]
    store = world.services.store
    with store.db.session() as s:
        gp = Actor(s.scalar(select(UserRow.id).where(UserRow.email == "gp_a@clinic.test")), Role.gp)
    sign(store, gp, latest_version_id(store, gp, rid))
    pdf = await c.get(f"/api/reports/{rid}/pdf", headers=h["pat_a"])
    assert pdf.status_code == 200 and "x-signed-pdf-sha256" not in pdf.headers
    assert (await verified(world, pdf.content)).reason == "the PDF carries no signature"
    fhir = await c.get(f"/api/reports/{rid}/fhir", headers=h["gp_a"])
    assert fhir.status_code == 409 and "signed before signed PDFs existed" in fhir.json()["detail"]
