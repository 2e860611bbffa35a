"""A signed report version as a FHIR R4 document Bundle (R4B classes of fhir.resources), shaped by HL7's
Lower-Extremity Skin Wound Assessment IG (hl7.fhir.us.skinwoundassessment).

Why a document: a signed report is a fixed, attested whole. A document Bundle (Composition first, attester, one
identifier) is what FHIR gives for "these resources, exactly so, signed by this clinician"; a transaction would ask
the receiver to create or update each resource separately, and the attested unit would be lost. docs/interop.md has
every resource and code, and where a local code remains.

Built from plain records, the Bundle is deterministic: the same signed version exports to the same document (ids
are derived from the signed PDF's sha256). Building the resources validates them; a measurement that was not taken
carries a dataAbsentReason with the analysis's reason, never a number.
"""

from __future__ import annotations

import base64
import hashlib
import html
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.resource import Resource

from telehealth.errors import Conflict
from telehealth.records import IdentifierKind, PatientIdentity, UserRecord
from telehealth.store.reports import ReportVersionRecord
from telehealth.store.signed_pdfs import ReplacedVersion
from telehealth.wound.models import PeriwoundRedness, TissueComposition, WoundAssessment

IG = "http://hl7.org/fhir/us/lower-extremity-skin-wound-assessment"
WOUND_SIZE_PROFILE = f"{IG}/StructureDefinition/WoundSize"
WOUND_BED_PROFILE = f"{IG}/StructureDefinition/WoundBed"
WOUND_BED_APPEARANCE_PROFILE = f"{IG}/StructureDefinition/WoundBedAppearance"
DEVICE_EXT = f"{IG}/StructureDefinition/DeviceExt"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
# Local code system and identifier namespaces: URNs, so nobody mistakes them for resolvable URLs.
LOCAL = "urn:scopecast:fhir:wound-analysis"
USER_IDS = "urn:scopecast:user"
REPORT_VERSIONS = "urn:scopecast:report-version"

# The IG's fixed codes (LOINC codes and displays as its profiles fix them).
WOUND_SIZE = ("72287-6", "Wound size panel")
LENGTH = ("39126-8", "Length of Wound")
WIDTH = ("39125-0", "Width of Wound")
AREA = ("89260-4", "Area of wound")
WOUND_BED = ("89254-7", "Wound bed panel")
BED_APPEARANCE = ("72371-8", "Appearance of Wound base")
APPEARANCE_AREA = ("72370-0", "Area of identified wound bed appearance/Area of wound bed of Wound base")
WOUND_ASSESSMENT = ("39135-9", "Wound assessment panel")
PROGRESS_NOTE = ("11506-3", "Progress note")
# Tissue classes to the IG's woundBedAppearanceVS (SNOMED CT); "unclassified" has no standard code.
TISSUE_CODES = {
    "granulation": ("225541009", "Granulation of tissue"),
    "slough": ("449746002", "Wound slough"),
    "necrotic": ("421306004", "Necrotic eschar"),
}
DEVICE_DERIVED = (
    "Device-derived: measured by software from the photograph (segmentation model and printed scale marker), "
    "then reviewed by the signing clinician."
)


@dataclass(frozen=True)
class ImageFile:
    media_type: str
    data: bytes


@dataclass(frozen=True)
class ReportDocumentInput:
    """Everything one signed report version exports: records only, read by the caller (report_api)."""

    report_id: int
    version: ReportVersionRecord  # signed
    patient_id: int
    patient: PatientIdentity
    signer: UserRecord
    body_site: str | None  # the case's label, free text ("left heel")
    taken_at: datetime | None  # when the analysed photo was taken
    photo: ImageFile | None  # the photograph itself, when its file is still stored
    evidence_png: bytes | None  # the analysis's overlay (outline, scale marker, measurements)
    assessment: WoundAssessment | None
    model_name: str | None
    model_version: str | None
    signed_pdf: bytes
    signed_pdf_sha256: str
    replaces: ReplacedVersion | None
    mrn_system: str


def _coding(system: str, code_display: tuple[str, str]) -> dict[str, str]:
    return {"system": system, "code": code_display[0], "display": code_display[1]}


def _concept(system: str, code_display: tuple[str, str], text: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(system, code_display)], "text": text or code_display[1]}


def _local(code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": LOCAL, "code": code, "display": text}], "text": text}


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": round(float(value), 4), "unit": unit, "system": UCUM, "code": code}


def _absent(reason: str) -> dict[str, Any]:
    return {"coding": [{"system": ABSENT, "code": "not-performed", "display": "Not Performed"}], "text": reason}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def document_identifier(report_id: int, version: int, pdf_sha256: str) -> dict[str, str]:
    """The document's identity is its signed PDF: another install's report 1 v1 is a different document."""
    value = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:scopecast:report-document:{report_id}:{version}:{pdf_sha256}")
    return {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{value}"}


def patient_identifier(identity: PatientIdentity, mrn_system: str) -> dict[str, Any]:
    """NHS number or MRN as a FHIR Identifier; Conflict when neither is recorded (the receiver could not match the
    report to its patient, and guessing by name is how reports reach the wrong record)."""
    if identity.identifier_kind is None or not identity.identifier_value:
        raise Conflict(
            "this patient has no MRN or NHS number recorded: a receiving system could not match the report to its "
            "patient; record the identifier on the patient's details first"
        )
    if identity.identifier_kind is IdentifierKind.nhs_number:
        return {"use": "official", "system": NHS_NUMBER, "value": identity.identifier_value}
    mr = {"coding": [{"system": IDENTIFIER_TYPE, "code": "MR", "display": "Medical record number"}]}
    return {"use": "usual", "type": mr, "system": mrn_system, "value": identity.identifier_value}


class _Ids:
    """Deterministic urn:uuid fullUrls for one document's resources."""

    def __init__(self, seed: str) -> None:
        self.seed = seed

    def __call__(self, name: str) -> str:
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{self.seed}:{name}')}"


def _device_extension(model: str) -> list[dict[str, Any]]:
    # The IG's woundMeasurementDeviceVS (tape, caliper) is an example binding and has no software: text only.
    return [{"url": DEVICE_EXT, "valueCodeableConcept": {"text": f"photo analysis software ({model})"}}]


def _wound_size(m: Any, base: dict[str, Any]) -> Observation:
    components = []
    for value, code, unit in ((m.length_cm, LENGTH, "cm"), (m.width_cm, WIDTH, "cm"), (m.area_cm2, AREA, "cm2")):
        component: dict[str, Any] = {"code": _concept(LOINC, code)}
        if value is None:
            component["dataAbsentReason"] = _absent(m.reason or "not measured")
        else:
            component["valueQuantity"] = _quantity(value, unit, unit)
        components.append(component)
    return Observation(
        **base,
        meta={"profile": [WOUND_SIZE_PROFILE]},
        code=_concept(LOINC, WOUND_SIZE),
        component=components,
    )


def _appearance(base: dict[str, Any], fraction: float, concept: dict[str, Any]) -> Observation:
    return Observation(
        **base,
        meta={"profile": [WOUND_BED_APPEARANCE_PROFILE]},
        code=_concept(LOINC, BED_APPEARANCE),
        valueCodeableConcept=concept,
        component=[{"code": _concept(LOINC, APPEARANCE_AREA), "valueQuantity": _quantity(100.0 * fraction, "%", "%")}],
    )


def _tissue(tissue: TissueComposition, base: dict[str, Any]) -> list[tuple[str, Observation]]:
    out = []
    for name, fraction in (
        ("granulation", tissue.granulation),
        ("slough", tissue.slough),
        ("necrotic", tissue.necrotic),
    ):
        concept = _concept(SNOMED, TISSUE_CODES[name])
        out.append((f"bed-{name}", _appearance(base, fraction, concept)))
    unclassified = _local("tissue-unclassified", "Wound bed tissue the model did not classify")
    out.append(("bed-unclassified", _appearance(base, tissue.unclassified, unclassified)))
    return out


def _redness(redness: PeriwoundRedness, base: dict[str, Any]) -> Observation:
    code = _local("periwound-redness-index", "Periwound redness index (CIELAB a* of the ring minus reference skin)")
    if redness.index is None:
        return Observation(**base, code=code, dataAbsentReason=_absent(redness.reason or "not measured"))
    flag = ("H", "High") if redness.above_threshold else ("N", "Normal")
    return Observation(
        **base,
        code=code,
        valueQuantity=_quantity(redness.index, "CIELAB a* difference", "1"),
        interpretation=[_concept(INTERPRETATION, flag)],
        referenceRange=[{"high": _quantity(redness.threshold, "CIELAB a* difference", "1")}],
    )


def report_document(doc: ReportDocumentInput) -> Bundle:
    """The signed version as a document Bundle. Raises Conflict for a draft or a patient without an identifier."""
    v = doc.version
    if v.signed_at is None or v.signed_by is None:
        raise Conflict("this report version is not signed: only a signed report is exported")
    ids = _Ids(f"urn:scopecast:report-document:{doc.signed_pdf_sha256}")
    signed_at = v.signed_at.isoformat()
    effective = (doc.taken_at or v.signed_at).isoformat()
    patient_url, practitioner_url, device_url = ids("patient"), ids("practitioner"), ids("device")
    patient_ref = {"reference": patient_url}
    practitioner_ref = {"reference": practitioner_url, "display": doc.signer.shown_name}
    model = f"{doc.model_name or 'unknown model'} {doc.model_version or ''}".strip()
    device_ref = {"reference": device_url, "display": model}

    identity = doc.patient
    patient = Patient(
        identifier=[patient_identifier(identity, doc.mrn_system)],
        name=[{"text": identity.full_name}] if identity.full_name else None,
        birthDate=identity.birth_date,
    )
    practitioner = Practitioner(
        identifier=[{"system": USER_IDS, "value": str(doc.signer.id)}],
        name=[{"text": doc.signer.shown_name}],
        telecom=[{"system": "email", "value": doc.signer.email}],
    )
    device = Device(
        deviceName=[{"name": doc.model_name or "unknown model", "type": "model-name"}],
        version=[{"value": doc.model_version}] if doc.model_version else None,
        type={"text": "Wound photo analysis software (AI segmentation with a printed scale marker)"},
    )

    body_site = {"text": doc.body_site} if doc.body_site else None

    def image_media(media_type: str, data: bytes, title: str, device: dict[str, str] | None = None) -> Media:
        return Media(
            status="completed",
            type=_concept("http://terminology.hl7.org/CodeSystem/media-type", ("image", "Image")),
            subject=patient_ref,
            createdDateTime=effective,
            bodySite=body_site,
            device=device,
            content={"contentType": media_type, "data": _b64(data), "title": title},
        )

    media: list[tuple[str, Media]] = []
    if doc.photo is not None:
        media.append(("photo", image_media(doc.photo.media_type, doc.photo.data, "wound photo")))
    if doc.evidence_png is not None:
        evidence_title = "analysis evidence: wound outline, scale marker and measurements"
        media.append(("evidence", image_media("image/png", doc.evidence_png, evidence_title, device_ref)))
    media_refs = [{"reference": ids(name)} for name, _m in media]

    base: dict[str, Any] = {
        "status": "final",
        "category": [_concept(OBS_CATEGORY, ("exam", "Exam"))],
        "subject": patient_ref,
        "effectiveDateTime": effective,
        "issued": signed_at,
        "performer": [practitioner_ref],
        "bodySite": body_site,
        "device": device_ref,
        "method": {"text": DEVICE_DERIVED},
        "note": [{"text": DEVICE_DERIVED}],
        "extension": _device_extension(model),
        "derivedFrom": media_refs[:1] or None,
    }
    observations: list[tuple[str, Observation]] = []
    a = doc.assessment
    if a is not None:
        observations.append(("wound-size", _wound_size(a.measurement, base)))
        bed_members: list[tuple[str, Observation]] = [] if a.tissue is None else _tissue(a.tissue, base)
        bed = Observation(
            **base,
            meta={"profile": [WOUND_BED_PROFILE]},
            code=_concept(LOINC, WOUND_BED),
            hasMember=[{"reference": ids(name)} for name, _o in bed_members] or None,
            dataAbsentReason=None if bed_members else _absent(a.tissue_not_assessed or "tissue mix not assessed"),
        )
        observations.append(("wound-bed", bed))
        observations.extend(bed_members)
        if a.redness is not None:
            observations.append(("redness", _redness(a.redness, base)))
    top_level = [name for name, _o in observations if not name.startswith("bed-")]

    title = f"Wound assessment report {doc.report_id}, version {v.version}"
    report = DiagnosticReport(
        identifier=[{"system": REPORT_VERSIONS, "value": f"{doc.report_id}-{v.version}"}],
        status="amended" if doc.replaces is not None else "final",
        code={
            "coding": [_coding(LOINC, WOUND_ASSESSMENT), {"system": LOCAL, "code": "wound-assessment-report"}],
            "text": "Wound assessment report",
        },
        subject=patient_ref,
        effectiveDateTime=effective,
        issued=signed_at,
        performer=[practitioner_ref],
        resultsInterpreter=[practitioner_ref],
        result=[{"reference": ids(name)} for name in top_level] or None,
        media=[{"link": ref, "comment": name} for ref, (name, _m) in zip(media_refs, media, strict=True)] or None,
        conclusion=(v.body.get("sections") or {}).get("impression") or None,
        presentedForm=[
            {
                "contentType": "application/pdf",
                "language": "en",
                "data": _b64(doc.signed_pdf),
                "size": len(doc.signed_pdf),
                # FHIR R4 fixes Attachment.hash to SHA-1; the sha256 the clinic records is in the title.
                "hash": _b64(hashlib.sha1(doc.signed_pdf).digest()),  # noqa: S324 - FHIR's choice, not security
                "title": f"{title}, PAdES-signed PDF (sha256 {doc.signed_pdf_sha256})",
                "creation": signed_at,
            }
        ],
    )
    report_url = ids("report")
    targets = [{"reference": report_url}] + [{"reference": ids(name)} for name, _o in observations]
    provenance = Provenance(
        target=targets,
        recorded=signed_at,
        agent=[
            {"type": _concept(PARTICIPANT, ("author", "Author")), "who": practitioner_ref},
            {"type": _concept(PARTICIPANT, ("attester", "Attester")), "who": practitioner_ref},
            {
                "type": _concept(PARTICIPANT, ("performer", "Performer")),
                "role": [
                    {"text": "contributing device: AI wound analysis that measured the wound and drafted the text"}
                ],
                "who": device_ref,
            },
        ],
        entity=[{"role": "source", "what": ref} for ref in media_refs[:1]] or None,
    )
    text = str(v.body.get("text") or "")
    narrative = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip()) or "<p/>"
    relates = None
    if doc.replaces is not None and doc.replaces.pdf_sha256 is not None:
        previous = document_identifier(doc.report_id, doc.replaces.version, doc.replaces.pdf_sha256)
        relates = [{"code": "replaces", "targetIdentifier": previous}]
    composition = Composition(
        identifier=document_identifier(doc.report_id, v.version, doc.signed_pdf_sha256),
        status="amended" if doc.replaces is not None else "final",
        type=_concept(LOINC, PROGRESS_NOTE, "Wound assessment report"),
        subject=patient_ref,
        date=signed_at,
        author=[practitioner_ref, device_ref],
        title=title,
        attester=[{"mode": "legal", "time": signed_at, "party": practitioner_ref}],
        relatesTo=relates,
        section=[
            {
                "title": "Wound assessment",
                "code": _concept(LOINC, WOUND_ASSESSMENT),
                "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{narrative}</div>'},
                "entry": [{"reference": report_url}] + [{"reference": ids(name)} for name in top_level],
            }
        ],
    )
    entries: list[tuple[str, Resource]] = [
        (ids("composition"), composition),
        (patient_url, patient),
        (practitioner_url, practitioner),
        (device_url, device),
        (report_url, report),
        *((ids(name), o) for name, o in observations),
        *((ids(name), m) for name, m in media),
        (ids("provenance"), provenance),
    ]
    return Bundle(
        type="document",
        identifier=document_identifier(doc.report_id, v.version, doc.signed_pdf_sha256),
        timestamp=signed_at,
        entry=[{"fullUrl": url, "resource": resource} for url, resource in entries],
    )
