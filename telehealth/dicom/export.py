"""Write a case's DICOM instances to a folder (`scopecast export-dicom`): one Part 10 file per instance, named by
photo and kind, with the same UIDs as every earlier export and the PACS copy. Blocking: files and database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from telehealth.dicom.builder import InstanceBuilder
from telehealth.dicom.instances import InvalidImage
from telehealth.dicom.records import InstanceKind
from telehealth.errors import NotFound
from telehealth.store.dicom_outbox import audit_case_export, case_photo_ids


class NothingToExport(ValueError):
    """The case has no photo that can be made into DICOM."""


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    photo_id: int
    kind: InstanceKind
    sop_instance_uid: str


@dataclass(frozen=True)
class SkippedPhoto:
    photo_id: int
    reason: str


@dataclass(frozen=True)
class CaseExport:
    case_id: int
    study_uid: str
    files: list[ExportedFile]
    skipped: list[SkippedPhoto]


def export_case(builder: InstanceBuilder, case_id: int, out_dir: Path, actor_id: int | None = None) -> CaseExport:
    """Every photo's instances under `out_dir` (made if missing). NotFound for no such case; NothingToExport for a
    case with no photos, or none whose file is still there. Audited as an export of the case."""
    photo_ids = case_photo_ids(builder.store, case_id)
    if not photo_ids:
        raise NothingToExport(f"case {case_id} has no photos: there is nothing to export as DICOM")
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[ExportedFile] = []
    skipped: list[SkippedPhoto] = []
    study_uid = ""
    for photo_id in photo_ids:
        try:
            built = builder.photo_instances(photo_id)
        except (NotFound, InvalidImage) as exc:
            skipped.append(SkippedPhoto(photo_id, str(exc)))
            continue
        for instance in built:
            path = out_dir / f"photo{photo_id}-{instance.kind.value}.dcm"
            instance.dataset.save_as(path, enforce_file_format=True)
            study_uid = str(instance.dataset.StudyInstanceUID)
            files.append(ExportedFile(path, photo_id, instance.kind, instance.sop_instance_uid))
    if not files:
        reasons = "; ".join(f"photo {s.photo_id}: {s.reason}" for s in skipped)
        raise NothingToExport(f"case {case_id} has no photo that can be exported: {reasons}")
    audit_case_export(builder.store, actor_id, case_id)
    return CaseExport(case_id, study_uid, files, skipped)
