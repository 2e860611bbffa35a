"""Checks of an exported document Bundle against FHIR (fhir.resources R4B) and against what the HL7 Lower-Extremity
Skin Wound Assessment IG's profiles require and fix (codes, displays, units), plus FHIR's document-Bundle rules.

The fixed values are written out here from the IG's StructureDefinitions, not imported from the code under test, so
a wrong constant in telehealth/fhir_export.py fails these checks instead of agreeing with itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
IG = "http://hl7.org/fhir/us/lower-extremity-skin-wound-assessment/StructureDefinition"
# WoundSize component slices: LOINC code -> (fixed display, fixed UCUM code)
WOUND_SIZE_SLICES = {
    "39126-8": ("Length of Wound", "cm"),
    "39125-0": ("Width of Wound", "cm"),
    "39127-6": ("Depth of Wound", "cm"),
    "89260-4": ("Area of wound", "cm2"),
}
WOUND_BED_APPEARANCE_VS = {"449746002", "225541009", "449745003", "449743005", "421306004", "609410002", "409590008"}

Resource = dict[str, Any]


def resources(bundle: Resource, kind: str) -> list[Resource]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_url(bundle: Resource) -> dict[str, Resource]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def _loinc(concept: Resource, code: str, display: str) -> None:
    codings = [c for c in concept["coding"] if c.get("system") == LOINC and c.get("code") == code]
    assert len(codings) == 1, (code, concept)
    assert codings[0]["display"] == display, codings[0]


def _profile(resource: Resource, name: str) -> None:
    assert f"{IG}/{name}" in resource.get("meta", {}).get("profile", []), resource.get("meta")


def _has_value(resource: Resource) -> bool:
    return any(k.startswith("value") for k in resource)


def check_document(bundle: Resource) -> None:
    """FHIR document rules (bdl-9/10/11, every entry a fullUrl, references resolve inside) and every resource valid."""
    assert bundle["type"] == "document"
    assert bundle["identifier"]["system"] and bundle["identifier"]["value"]  # bdl-9
    assert bundle["timestamp"]  # bdl-10
    assert bundle["entry"][0]["resource"]["resourceType"] == "Composition"  # bdl-11
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls)) and all(u.startswith("urn:uuid:") for u in urls)
    for ref in _references(bundle):
        assert ref in urls, f"reference {ref} does not resolve inside the document"
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)  # each on its own, R4B


def check_device_observation(obs: Resource, device: Resource, taken_at: datetime, body_site: str) -> None:
    """What every device-derived Observation of the export carries."""
    assert obs["status"] in {"final", "amended"}
    assert datetime.fromisoformat(obs["effectiveDateTime"]) == taken_at, (obs["effectiveDateTime"], taken_at)
    assert obs["bodySite"]["text"] == body_site
    assert obs["category"][0]["coding"][0]["code"] == "exam"
    assert obs["device"]["reference"] and "Device-derived" in obs["method"]["text"]
    assert any(e["url"] == f"{IG}/DeviceExt" for e in obs["extension"])
    assert device["version"][0]["value"]


def check_wound_size(obs: Resource) -> None:
    _profile(obs, "WoundSize")
    _loinc(obs["code"], "72287-6", "Wound size panel")
    assert not _has_value(obs), "WoundSize fixes value[x] to 0..0"
    components = obs.get("component", [])
    assert len(components) <= 5
    seen = []
    for component in components:
        code = component["code"]["coding"][0]["code"]
        display, unit = WOUND_SIZE_SLICES[code]
        _loinc(component["code"], code, display)
        seen.append(code)
        if "valueQuantity" in component:
            q = component["valueQuantity"]
            assert (q["system"], q["code"]) == (UCUM, unit), q
            assert q["value"] > 0
        else:
            assert component["dataAbsentReason"]["text"]
    assert len(seen) == len(set(seen)), "each slice is 0..1"


def check_wound_bed(obs: Resource, bundle: Resource) -> list[Resource]:
    _profile(obs, "WoundBed")
    _loinc(obs["code"], "89254-7", "Wound bed panel")
    assert not _has_value(obs)
    members = [by_url(bundle)[m["reference"]] for m in obs.get("hasMember", [])]
    for member in members:
        check_wound_bed_appearance(member)
    return members


def check_wound_bed_appearance(obs: Resource) -> None:
    _profile(obs, "WoundBedAppearance")
    _loinc(obs["code"], "72371-8", "Appearance of Wound base")
    coding = obs["valueCodeableConcept"]["coding"][0]
    assert coding["system"] != "http://snomed.info/sct" or coding["code"] in WOUND_BED_APPEARANCE_VS, coding
    (area,) = obs["component"]
    _loinc(area["code"], "72370-0", "Area of identified wound bed appearance/Area of wound bed of Wound base")
    assert (area["valueQuantity"]["system"], area["valueQuantity"]["code"]) == (UCUM, "%")
    assert 0 <= area["valueQuantity"]["value"] <= 100
