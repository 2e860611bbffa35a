"""The image instances of a stored photo, built with pydicom.

- A patient's photo is a VL Photographic Image (XC): the standard's IOD for visible-light photographs of the patient.
- A frame captured from a consult's video is a Secondary Capture (conversion DV, digitised video): it was grabbed from
  a video stream by scopecast, not taken by a camera as a photograph. A theatre stream's frame would take the same
  path (or VL Endoscopic Image where the source is an endoscope whose acquisition details are known).
- The analysis's evidence overlay is its own Secondary Capture (conversion WSD, DERIVED), pointing at the photo it was
  drawn over, so the photo itself stays unmarked.

Photos and captures carry the stored JPEG file itself, encapsulated as JPEG Baseline: no second lossy generation, and
the PACS's pixel data hashes to the photo's sha256 in the store. The overlay (a PNG) goes uncompressed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
    VLPhotographicImageStorage,
)

from telehealth.dicom.records import DicomPatient, DicomStudy, InstanceUids, PhotoImage

UNKNOWN_CAPTURE_TIME = "capture time unknown (the camera gave no date): acquisition time is the upload time"


class InvalidImage(ValueError):
    """The stored file is not what an instance can carry (not a baseline JPEG, not an RGB PNG)."""


@dataclass(frozen=True)
class Equipment:
    """Who made the instances: written into General Equipment."""

    manufacturer: str = "scopecast"
    software_version: str = "0.1.0"
    institution: str = ""


def dicom_date(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%d")


def dicom_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%H%M%S.%f")


def dicom_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%d%H%M%S.%f+0000")


def person_name(full_name: str | None) -> str:
    """scopecast keeps a name as one free-text field. Splitting it into DICOM's family^given by guesswork could file
    a patient under a wrong family name, so the whole name is the family component; the trailing caret says that is
    meant (without it the value reads as the retired space-separated form)."""
    if not full_name:
        return ""
    return full_name.replace("^", " ").replace("=", " ").strip()[:63] + "^"


def _file_meta(sop_class: str, sop_instance_uid: str, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def common_dataset(
    patient: DicomPatient,
    study: DicomStudy,
    uids: InstanceUids,
    sop_class: str,
    modality: str,
    series_description: str,
    equipment: Equipment,
    created: datetime,
) -> Dataset:
    """Patient, General Study, General Series, General Equipment and SOP Common: what every instance of the case
    shares. Unknown Type 2 values stay empty, as the standard asks, rather than made up."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names are free text
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = UID(uids.sop_instance_uid)
    ds.InstanceCreationDate = dicom_date(created)
    ds.InstanceCreationTime = dicom_time(created)
    ds.TimezoneOffsetFromUTC = "+0000"  # every time scopecast writes is UTC
    # Patient
    ds.PatientName = person_name(patient.name)
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = patient.issuer
    ds.PatientBirthDate = "" if patient.birth_date is None else patient.birth_date.strftime("%Y%m%d")
    ds.PatientSex = ""  # scopecast does not record it
    if patient.note:
        ds.PatientComments = patient.note
    # General Study: the case
    ds.StudyInstanceUID = UID(study.study_uid)
    ds.StudyDate = dicom_date(study.started_at)
    ds.StudyTime = dicom_time(study.started_at)
    ds.ReferringPhysicianName = ""
    ds.StudyID = str(study.case_id)[:16]
    ds.AccessionNumber = ""
    ds.StudyDescription = study.description[:64]
    # General Series: one visit's instances of one kind
    ds.Modality = modality
    ds.SeriesInstanceUID = UID(uids.series_uid)
    ds.SeriesNumber = uids.series_number
    ds.SeriesDescription = series_description[:64]
    ds.Laterality = ""  # the wound's side is in the case's free-text site, not coded
    # General Equipment
    ds.Manufacturer = equipment.manufacturer
    ds.SoftwareVersions = equipment.software_version
    if equipment.institution:
        ds.InstitutionName = equipment.institution
    ds.InstanceNumber = uids.instance_number
    return ds


def _image_times(ds: Dataset, image: PhotoImage) -> None:
    ds.ContentDate = dicom_date(image.taken_at)
    ds.ContentTime = dicom_time(image.taken_at)
    ds.AcquisitionDateTime = dicom_datetime(image.taken_at)
    ds.AcquisitionDate = dicom_date(image.taken_at)
    ds.AcquisitionTime = dicom_time(image.taken_at)
    ds.PatientOrientation = ""  # a hand-held photo has no known orientation to the patient (Type 2C: empty)
    if not image.capture_time_known:
        ds.ImageComments = UNKNOWN_CAPTURE_TIME


def jpeg_layout(jpeg: bytes) -> tuple[int, int, int, str]:
    """(rows, columns, samples per pixel, photometric interpretation) of a baseline JPEG, or InvalidImage."""
    try:
        with Image.open(io.BytesIO(jpeg), formats=("JPEG",)) as img:
            mode, (width, height) = img.mode, img.size
            progressive = bool(img.info.get("progressive") or img.info.get("progression"))
            from PIL import JpegImagePlugin

            sampling = JpegImagePlugin.get_sampling(img)
    except Exception as exc:  # noqa: BLE001 - any decoder error means the same: not a JPEG we can carry
        raise InvalidImage(f"the stored photo is not a readable JPEG: {type(exc).__name__}") from None
    if progressive:
        raise InvalidImage("the stored photo is a progressive JPEG; DICOM JPEG Baseline needs a baseline one")
    if mode == "L":
        return height, width, 1, "MONOCHROME2"
    if mode != "RGB":
        raise InvalidImage(f"the stored photo's JPEG is {mode}, not RGB or greyscale")
    # Baseline JPEG keeps colour as YCbCr: full-resolution chroma is YBR_FULL, subsampled chroma YBR_FULL_422.
    return height, width, 3, "YBR_FULL" if sampling == 0 else "YBR_FULL_422"


def _jpeg_pixels(ds: Dataset, jpeg: bytes) -> None:
    rows, columns, samples, photometric = jpeg_layout(jpeg)
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression = "01"  # the stored photo is a JPEG: lossy once, at intake, never again here
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    raw = rows * columns * samples
    ds.LossyImageCompressionRatio = f"{raw / len(jpeg):.2f}"[:16]
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def _original_image(
    patient: DicomPatient,
    study: DicomStudy,
    uids: InstanceUids,
    image: PhotoImage,
    equipment: Equipment,
    sop_class: str,
    series_description: str,
) -> Dataset:
    ds = common_dataset(patient, study, uids, sop_class, "XC", series_description, equipment, image.received_at)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    _image_times(ds, image)
    return ds


def _with_jpeg(ds: Dataset, image: PhotoImage, sop_class: str, uids: InstanceUids) -> Dataset:
    _jpeg_pixels(ds, image.jpeg)
    ds.file_meta = _file_meta(sop_class, uids.sop_instance_uid, JPEGBaseline8Bit)
    return ds


def photo_instance(
    patient: DicomPatient, study: DicomStudy, uids: InstanceUids, image: PhotoImage, equipment: Equipment
) -> Dataset:
    """A patient's photo as a VL Photographic Image, carrying the stored JPEG."""
    sop_class = VLPhotographicImageStorage
    description = f"Wound photos {dicom_date(image.taken_at)}"
    ds = _original_image(patient, study, uids, image, equipment, sop_class, description)
    ds.AcquisitionContextSequence = []  # Type 2: nothing coded is known about the acquisition
    return _with_jpeg(ds, image, sop_class, uids)


def capture_instance(
    patient: DicomPatient, study: DicomStudy, uids: InstanceUids, image: PhotoImage, equipment: Equipment
) -> Dataset:
    """A frame captured from a consult's video as a Secondary Capture (digitised video), carrying the stored JPEG."""
    sop_class = SecondaryCaptureImageStorage
    description = f"Consult captures {dicom_date(image.taken_at)}"
    ds = _original_image(patient, study, uids, image, equipment, sop_class, description)
    ds.ConversionType = "DV"
    ds.SecondaryCaptureDeviceManufacturer = equipment.manufacturer
    ds.SecondaryCaptureDeviceSoftwareVersions = equipment.software_version
    ds.DateOfSecondaryCapture = dicom_date(image.received_at)
    ds.TimeOfSecondaryCapture = dicom_time(image.received_at)
    return _with_jpeg(ds, image, sop_class, uids)


def overlay_instance(
    patient: DicomPatient,
    study: DicomStudy,
    uids: InstanceUids,
    image: PhotoImage,
    source: Dataset,
    png: bytes,
    made_at: datetime,
    equipment: Equipment,
) -> Dataset:
    """The evidence overlay (the wound's outline drawn over the photo) as a derived Secondary Capture that names
    `source`, the photo's own instance."""
    try:
        with Image.open(io.BytesIO(png), formats=("PNG",)) as img:
            rgb = np.ascontiguousarray(np.asarray(img.convert("RGB")))
    except Exception as exc:  # noqa: BLE001
        raise InvalidImage(f"the evidence overlay is not a readable PNG: {type(exc).__name__}") from None
    ds = common_dataset(
        patient,
        study,
        uids,
        SecondaryCaptureImageStorage,
        "OT",
        f"Wound analysis overlays {dicom_date(image.taken_at)}",
        equipment,
        made_at,
    )
    ds.ImageType = ["DERIVED", "SECONDARY"]
    _image_times(ds, image)
    ds.ContentDate, ds.ContentTime = dicom_date(made_at), dicom_time(made_at)
    ds.ConversionType = "WSD"
    ds.SecondaryCaptureDeviceManufacturer = equipment.manufacturer
    ds.SecondaryCaptureDeviceSoftwareVersions = equipment.software_version
    ds.DateOfSecondaryCapture, ds.TimeOfSecondaryCapture = dicom_date(made_at), dicom_time(made_at)
    ds.DerivationDescription = "wound segmentation outline and measurements drawn over the photo by the wound model"
    ds.BurnedInAnnotation = "NO"  # measurements and outlines only: no patient identity is drawn
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    ds.SourceImageSequence = [ref]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.Rows, ds.Columns = int(rgb.shape[0]), int(rgb.shape[1])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression = "01" if source.get("LossyImageCompression") == "01" else "00"
    ds.PixelData = rgb.tobytes()
    ds["PixelData"].VR = "OB"
    ds.file_meta = _file_meta(SecondaryCaptureImageStorage, uids.sop_instance_uid, ExplicitVRLittleEndian)
    return ds
