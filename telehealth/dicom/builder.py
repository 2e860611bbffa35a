"""A stored photo's DICOM instances, from the store: its image (photo or capture), its evidence overlay and its
measurements report, each with the UIDs the store keeps for it. Blocking (database and files): run in a thread."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from telehealth.dicom.instances import Equipment, capture_instance, overlay_instance, photo_instance
from telehealth.dicom.measurement_sr import measurement_report
from telehealth.dicom.records import InstanceKind, InstanceSource
from telehealth.dicom.settings import DicomSettings
from telehealth.evidence_files import EvidenceFiles
from telehealth.store.cases import CaseStore
from telehealth.store.dicom_outbox import instance_uids, photo_source


@dataclass(frozen=True)
class BuiltInstance:
    photo_id: int
    kind: InstanceKind
    dataset: Dataset

    @property
    def sop_instance_uid(self) -> str:
        return str(self.dataset.SOPInstanceUID)


def instance_kinds(source: InstanceSource) -> list[InstanceKind]:
    """What a photo yields: its image always, the overlay once analysed, the report once something was measured."""
    kinds = [InstanceKind.capture if source.image.source_is_capture else InstanceKind.photo]
    if source.evidence_png is not None and source.measured is not None:
        kinds.append(InstanceKind.overlay)
    if source.measured is not None and source.measured.has_numbers:
        kinds.append(InstanceKind.measurements)
    return kinds


class InstanceBuilder:
    def __init__(self, store: CaseStore, evidence: EvidenceFiles, settings: DicomSettings) -> None:
        self.store = store
        self.evidence = evidence
        self.settings = settings
        self.equipment = Equipment(institution=settings.institution)

    def source(self, photo_id: int) -> InstanceSource:
        return photo_source(self.store, self.evidence, photo_id, self.settings.mrn_issuer, self.settings.uid_root)

    def photo_instances(self, photo_id: int, only: InstanceKind | None = None) -> list[BuiltInstance]:
        """Every instance the photo yields (or just the one of kind `only`, with the image it depends on built but
        not returned); NotFound when the photo or its file is gone."""
        source = self.source(photo_id)
        kinds = instance_kinds(source)
        root = self.settings.uid_root
        image_kind = kinds[0]
        build = photo_instance if image_kind is InstanceKind.photo else capture_instance
        image = build(
            source.patient,
            source.study,
            instance_uids(self.store, photo_id, image_kind, root),
            source.image,
            self.equipment,
        )
        out = [BuiltInstance(photo_id, image_kind, image)]
        wanted = [k for k in kinds[1:] if only is None or k is only]
        if InstanceKind.overlay in wanted and source.evidence_png is not None and source.measured is not None:
            overlay = overlay_instance(
                source.patient,
                source.study,
                instance_uids(self.store, photo_id, InstanceKind.overlay, root),
                source.image,
                image,
                source.evidence_png,
                source.measured.analysed_at,
                self.equipment,
            )
            out.append(BuiltInstance(photo_id, InstanceKind.overlay, overlay))
        if InstanceKind.measurements in wanted and source.measured is not None:
            sr = measurement_report(
                image,
                instance_uids(self.store, photo_id, InstanceKind.measurements, root),
                source.measured,
                source.study.site,
                self.equipment,
            )
            out.append(BuiltInstance(photo_id, InstanceKind.measurements, sr))
        if only is not None:
            out = [b for b in out if b.kind is only]
        for instance in out:
            # A Part 10 file starts with a 128-byte preamble and "DICM": STOW-RS and media both expect one, and
            # pydicom writes it only when the dataset has a preamble.
            instance.dataset.preamble = b"\0" * 128
        return out
