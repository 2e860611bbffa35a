"""A report version as a FHIR R4 (R4B classes of fhir.resources) Bundle: DiagnosticReport + Observations + Media.

Building the resources validates them; a measurement that was not taken is an Observation with a
dataAbsentReason, never a number.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.reference import Reference

from telehealth.records import ReportStatus
from telehealth.store.reports import ReportView
from telehealth.wound.models import WoundAssessment

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
LOCAL = "https://scopecast.example/fhir/CodeSystem/wound-analysis"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _code(local: str, text: str, loinc: str | None = None) -> dict[str, Any]:
    coding = [{"system": LOCAL, "code": local, "display": text}]
    if loinc:
        coding.insert(0, {"system": LOINC, "code": loinc, "display": text})
    return {"coding": coding, "text": text}


def _quantity(value: float, unit: str, code: str | None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": round(float(value), 4), "unit": unit}
    if code:
        q.update(system=UCUM, code=code)
    return q


def observations(
    analysis: WoundAssessment | None, obs_status: str, subject: dict[str, str], when: str
) -> list[Observation]:
    """Area (cm2, only when measured), length, width, tissue fractions and redness index as Observations."""
    base = {
        "status": obs_status,
        "subject": subject,
        "effectiveDateTime": when,
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "exam"}]}
        ],
    }
    m = None if analysis is None else analysis.measurement
    out: list[Observation] = []
    if m is not None and m.area_cm2 is not None:
        out.append(
            Observation(
                **base, code=_code("wound-area", "Wound area"), valueQuantity=_quantity(m.area_cm2, "cm2", "cm2")
            )
        )
        # LOINC 39126-8 "Length of Wound" and 39125-0 "Width of Wound" (the codes HL7's wound-care IGs bind).
        for value, local, loinc, text in (
            (m.length_cm, "wound-length", "39126-8", "Length of Wound"),
            (m.width_cm, "wound-width", "39125-0", "Width of Wound"),
        ):
            if value is not None:
                out.append(
                    Observation(**base, code=_code(local, text, loinc), valueQuantity=_quantity(value, "cm", "cm"))
                )
    else:
        reason = (m.reason if m is not None else None) or "not measured"
        absent = {"coding": [{"system": ABSENT, "code": "not-performed"}], "text": reason}
        out.append(Observation(**base, code=_code("wound-area", "Wound area"), dataAbsentReason=absent))
    tissue = None if analysis is None else analysis.tissue
    if tissue is not None:
        for name, fraction in (
            ("granulation", tissue.granulation),
            ("slough", tissue.slough),
            ("necrotic", tissue.necrotic),
            ("unclassified", tissue.unclassified),
        ):
            out.append(
                Observation(
                    **base,
                    code=_code(f"tissue-{name}", f"Wound bed {name} fraction"),
                    valueQuantity=_quantity(100.0 * fraction, "%", "%"),
                )
            )
    redness = None if analysis is None else analysis.redness
    if redness is not None and redness.index is not None:
        out.append(
            Observation(
                **base,
                code=_code("periwound-redness-index", "Periwound redness index (CIELAB a* difference)"),
                valueQuantity=_quantity(redness.index, "a* units", None),
            )
        )
    return out


def report_bundle(view: ReportView, analysis: WoundAssessment | None, evidence_png: bytes | None) -> Bundle:
    version = view.current
    signed = version.status is ReportStatus.signed
    subject = {"reference": f"Patient/{view.patient_id}"}
    when = (version.signed_at or version.created_at or datetime.now(UTC)).isoformat()
    obs = observations(analysis, "final" if signed else "preliminary", subject, when)
    entries: list[dict[str, Any]] = []
    obs_refs = []
    for o in obs:
        url = _urn()
        entries.append({"fullUrl": url, "resource": o})
        obs_refs.append({"reference": url})
    media_refs = []
    if evidence_png is not None:
        url = _urn()
        media = Media(
            status="completed",
            subject=subject,
            createdDateTime=when,
            content={
                "contentType": "image/png",
                "data": base64.b64encode(evidence_png).decode("ascii"),
                "title": "wound analysis evidence image",
            },
        )
        entries.append({"fullUrl": url, "resource": media})
        media_refs.append(
            {"comment": "evidence image (wound outline, scale marker, measurements)", "link": {"reference": url}}
        )
    text = str(version.body.get("text") or "")
    forms = [
        {
            "contentType": "text/plain; charset=utf-8",
            "data": base64.b64encode(text.encode()).decode("ascii"),
            "title": "report text",
        }
    ]
    if evidence_png is not None:
        forms.append(
            {
                "contentType": "image/png",
                "data": base64.b64encode(evidence_png).decode("ascii"),
                "title": "evidence image",
            }
        )
    report = DiagnosticReport(
        status="final" if signed else "preliminary",
        code=_code("wound-assessment", "Wound assessment report"),
        subject=subject,
        effectiveDateTime=when,
        issued=when,
        result=obs_refs or None,
        media=media_refs or None,
        conclusion=(version.body.get("sections") or {}).get("impression") or None,
        presentedForm=forms,
        identifier=[
            {"system": "https://scopecast.example/fhir/report-version", "value": f"{view.report_id}-{version.version}"}
        ],
    )
    if version.signed_by is not None:
        report.performer = [Reference(reference=f"Practitioner/{version.signed_by}")]
    return Bundle(
        type="collection",
        timestamp=datetime.now(UTC).isoformat(),
        entry=[{"fullUrl": _urn(), "resource": report}, *entries],
    )
