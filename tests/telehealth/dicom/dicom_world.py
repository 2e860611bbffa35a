"""A small clinic for the DICOM tests, built straight on the store: a GP, a patient with identity, a case, photos
(uploads or consult captures, with or without a camera date) analysed by the synthetic wound segmenter."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import date, datetime
from pathlib import Path

from telehealth_testutil import fast_settings
from wound_photos import scene, scene_jpeg

from scopecast.app import build_telehealth, dicom_outbox
from telehealth.accounts import add_user
from telehealth.case_api import intake_limits
from telehealth.dicom.outbox import DicomOutbox
from telehealth.dicom.settings import DicomSettings
from telehealth.photo_intake import clean_photo
from telehealth.records import Actor, IdentifierKind, PatientIdentity, PhotoRecord, PhotoSource, Role
from telehealth.services import TelehealthServices
from telehealth.store.patients import add_patient
from telehealth.wound import fixed_mask_segmenter

JANE = PatientIdentity("Jane Smith", date(1950, 3, 4), IdentifierKind.nhs_number, "9434765919")
NOBODY = PatientIdentity(None, None, None, None)  # a record from before identity was asked for


def clinic(
    data_dir: Path, url: str | None = None, database_url: str | None = None, **dicom: object
) -> TelehealthServices:
    """Telehealth over `data_dir` (and `database_url`, default SQLite there) whose segmenter returns the synthetic
    scene's mask; DICOM pushed to `url`."""
    return build_telehealth(
        fast_settings(data_dir, database_url=database_url),
        segmenter_factory=lambda: fixed_mask_segmenter(scene(True).mask, "synthetic-mask", "1"),
        dicom_settings=DicomSettings(url=url, **dicom),  # type: ignore[arg-type]
    )


def outbox_to(services: TelehealthServices, url: str, **dicom: object) -> DicomOutbox:
    """Another outbox over the same store, sending to `url`."""
    return dicom_outbox(services.store, services.evidence, DicomSettings(url=url, **dicom))  # type: ignore[arg-type]


@dataclasses.dataclass
class Clinic:
    services: TelehealthServices
    gp: Actor
    patient_id: int
    case_id: int

    def photo(
        self,
        with_marker: bool = True,
        source: PhotoSource = PhotoSource.patient_upload,
        camera_time: datetime | None = None,
        analyse: bool = True,
    ) -> PhotoRecord:
        clean = clean_photo(scene_jpeg(with_marker), intake_limits(self.services.settings))
        clean = dataclasses.replace(clean, taken_at=camera_time)
        record, _ = self.services.store.add_photo(self.gp, self.case_id, clean, None, source)
        if analyse:
            self.services.analyses.analyse_blocking(record.id)
        return record


def open_case(services: TelehealthServices, identity: PatientIdentity = JANE, site: str | None = "left heel") -> Clinic:
    user = add_user(services.store, f"gp-{secrets.token_hex(4)}@clinic.test", "correct horse battery", Role.gp)
    gp = Actor(user.id, Role.gp)
    patient = add_patient(services.store, gp, identity)
    case = services.store.create_case(gp, patient.id, site)
    return Clinic(services, gp, patient.id, case.id)
