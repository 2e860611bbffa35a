"""The AI's wound measurements as a DICOM Structured Report: TID 1500 (Measurement Report) in a Comprehensive 3D SR,
built with highdicom.

One report per analysed photo: one measurement group (TID 1501) for the wound seen in that photo, tracked across
visits by a tracking UID kept per case, with area, length and width in UCUM (cm2, cm); the wound model is the
observer device and the algorithm. The report is PRELIMINARY and UNVERIFIED: the model's numbers prompt a
clinician's review and are not a clinician's finding. A photo the model could not measure has no report (TID 1500
has no place for "not measured" beside a value); its overlay says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from telehealth.dicom.identity import model_device_uid
from telehealth.dicom.instances import Equipment, dicom_date, dicom_time
from telehealth.dicom.records import InstanceUids, MeasuredWound

WOUND = Code("416462003", "SCT", "Wound")
_NAMES = {"area_cm2": codes.SCT.Area, "length_cm": codes.SCT.Length, "width_cm": codes.SCT.Width}
_UNITS = {
    "area_cm2": codes.UCUM.SquareCentimeter,
    "length_cm": codes.UCUM.Centimeter,
    "width_cm": codes.UCUM.Centimeter,
}


class NothingMeasured(ValueError):
    """The analysis has no number to report."""


def wound_tracking_uid(study_uid: str) -> str:
    """The case's wound as one tracked finding: the same UID in every visit's report."""
    return generate_uid(prefix=None, entropy_srcs=["scopecast-wound-tracking", study_uid])


def measurement_report(
    source: Dataset,
    uids: InstanceUids,
    measured: MeasuredWound,
    site: str | None,
    equipment: Equipment,
) -> hd.sr.Comprehensive3DSR:
    """The TID 1500 report of `measured`, about `source` (the photo's own instance: its patient and study are
    copied from it, and it is listed as evidence)."""
    if not measured.has_numbers:
        raise NothingMeasured("the analysis measured nothing: no report is made")
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=model_device_uid(measured.model_name, measured.model_version),
            name=measured.model_name[:64],
            manufacturer_name=equipment.manufacturer,
            model_name=f"{measured.model_name} {measured.model_version}"[:64],
        ),
    )
    algorithm = hd.sr.AlgorithmIdentification(name=measured.model_name[:64], version=measured.model_version[:64])
    values = {"area_cm2": measured.area_cm2, "length_cm": measured.length_cm, "width_cm": measured.width_cm}
    measurements = [
        hd.sr.Measurement(name=_NAMES[key], value=float(value), unit=_UNITS[key], algorithm_id=algorithm)
        for key, value in values.items()
        if value is not None
    ]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=wound_tracking_uid(str(source.StudyInstanceUID)),
            identifier=f"wound: {site or 'site not recorded'}"[:64],
        ),
        time_point_context=hd.sr.TimePointContext(time_point=str(source.get("AcquisitionDate", ""))[:64] or "visit"),
        finding_type=WOUND,
        algorithm_id=algorithm,
        measurements=measurements,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.SCT.PhotographyOfPatient,
        imaging_measurements=[group],
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[source],
        content=report[0],
        series_instance_uid=uids.series_uid,
        series_number=uids.series_number,
        sop_instance_uid=uids.sop_instance_uid,
        instance_number=uids.instance_number,
        manufacturer=equipment.manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        institution_name=equipment.institution or None,
    )
    _stamp(sr, measured.analysed_at)
    sr.SeriesDescription = f"Wound measurements (AI) {dicom_date(measured.analysed_at)}"
    sr.SpecificCharacterSet = "ISO_IR 192"
    sr.TimezoneOffsetFromUTC = "+0000"
    if "IssuerOfPatientID" in source:
        sr.IssuerOfPatientID = source.IssuerOfPatientID
    return sr


def _stamp(sr: Dataset, when: datetime) -> None:
    """The report's content time is when the model measured, not when this file was written."""
    sr.ContentDate, sr.ContentTime = dicom_date(when), dicom_time(when)


@dataclass(frozen=True)
class ReportedMeasurements:
    """What a TID 1500 report says, read back (tests and round trips compare it with the store)."""

    area_cm2: float | None
    length_cm: float | None
    width_cm: float | None
    observer_device: str | None
    units: tuple[str, ...]


def read_measurements(sr: Dataset) -> ReportedMeasurements:
    """The area, length and width (and the observer device's name) of a report made by measurement_report."""
    found: dict[str, float] = {}
    units: list[str] = []
    device: str | None = None
    wanted = {code.value: key for key, code in _NAMES.items()}

    def walk(items: Sequence[Dataset]) -> None:
        nonlocal device
        for item in items:
            name = item.ConceptNameCodeSequence[0] if "ConceptNameCodeSequence" in item else None
            if item.ValueType == "NUM" and name is not None and name.CodeValue in wanted:
                value = item.MeasuredValueSequence[0]
                found[wanted[name.CodeValue]] = float(value.NumericValue)
                units.append(str(value.MeasurementUnitsCodeSequence[0].CodeValue))
            if item.ValueType == "TEXT" and name is not None and name.CodeValue == "121013":  # Device Observer Name
                device = str(item.TextValue)
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(sr.ContentSequence)
    return ReportedMeasurements(
        found.get("area_cm2"), found.get("length_cm"), found.get("width_cm"), device, tuple(units)
    )
