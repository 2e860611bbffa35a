"""DICOM UIDs and the patient's DICOM identity.

Study, series and instance UIDs are made once (random, under the organisation's root or the UUID-derived 2.25 root)
and kept in the database by the store, so a re-export or a resend never invents new ones. Only the model's device UID
is derived, from the model's name and version, so one model version is one observer device everywhere.
"""

from __future__ import annotations

from pydicom.uid import generate_uid

from telehealth.dicom.records import DicomPatient
from telehealth.records import IdentifierKind, PatientIdentity

LOCAL_ISSUER = "SCOPECAST"
NHS_ISSUER = "NHS"
_DEVICE_NAMESPACE = "scopecast-wound-model"


def new_uid(root: str | None) -> str:
    """A fresh UID: `root`.<random digits> when the organisation has a root, else 2.25.<UUID as an integer>."""
    return generate_uid(prefix=None if root is None else root + ".")


def model_device_uid(model_name: str, model_version: str) -> str:
    """The observer device UID of one model version: the same on every export (a hash, under 2.25)."""
    return generate_uid(prefix=None, entropy_srcs=[_DEVICE_NAMESPACE, model_name, model_version])


def dicom_patient(patient_id: int, identity: PatientIdentity, mrn_issuer: str) -> DicomPatient:
    """The patient as DICOM names them; a record from before identity was asked for keeps empty Type 2 name and
    birth date and a local placeholder ID (a PACS must not pool every unknown patient under one empty ID)."""
    missing = [
        what
        for what, value in (
            ("name", identity.full_name),
            ("date of birth", identity.birth_date),
            ("identifier", identity.identifier_value),
        )
        if value is None
    ]
    note = None
    if missing:
        note = "scopecast has no " + ", ".join(missing) + " for this patient"
    if identity.identifier_value is None or identity.identifier_kind is None:
        pid, issuer = f"SCOPECAST-P{patient_id}", LOCAL_ISSUER
        note = (note or "") + f"; PatientID {pid} is a local placeholder"
    elif identity.identifier_kind is IdentifierKind.nhs_number:
        pid, issuer = identity.identifier_value, NHS_ISSUER
    else:
        pid, issuer = identity.identifier_value, mrn_issuer
    return DicomPatient(
        patient_id=pid, issuer=issuer, name=identity.full_name, birth_date=identity.birth_date, note=note
    )
