"""The DICOM instances of kept photos, read back with pydicom: the IOD each kind uses, its required attributes, who
and when they say, the pixel data (the stored JPEG itself), the SR's measurements, UIDs kept across re-exports, and
dciodvfy's verdict where dicom3tools is installed."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pydicom
import pytest
from dicom_world import NOBODY, Clinic, clinic, open_case
from pydicom.encaps import generate_frames

from telehealth.dicom.builder import BuiltInstance
from telehealth.dicom.export import NothingToExport, export_case
from telehealth.dicom.instances import UNKNOWN_CAPTURE_TIME
from telehealth.dicom.measurement_sr import read_measurements
from telehealth.dicom.records import InstanceKind
from telehealth.errors import NotFound
from telehealth.records import PhotoSource
from telehealth.store.analyses import read_analysis

VL_PHOTO = "1.2.840.10008.5.1.4.1.1.77.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"

# Type 1 and 2 attributes of the modules each IOD requires (PS3.3 A.32.4, A.8.1, A.35.13), as scopecast fills them.
COMMON = [
    "SOPClassUID", "SOPInstanceUID", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "Modality", "SeriesInstanceUID", "SeriesNumber", "Manufacturer", "InstanceNumber",
]  # fmt: skip
IMAGE = ["PatientOrientation", "ContentDate", "ContentTime", "SamplesPerPixel", "PhotometricInterpretation", "Rows",
         "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PixelData", "ImageType"]  # fmt: skip
REQUIRED = {
    InstanceKind.photo: COMMON + IMAGE + ["AcquisitionContextSequence", "LossyImageCompression", "PlanarConfiguration"],
    InstanceKind.capture: COMMON + IMAGE + ["ConversionType", "LossyImageCompression"],
    InstanceKind.overlay: COMMON + IMAGE + ["ConversionType", "SourceImageSequence"],
    InstanceKind.measurements: COMMON + ["ValueType", "ConceptNameCodeSequence", "ContentSequence", "CompletionFlag",
                                         "VerificationFlag", "ContentDate", "ContentTime", "ContentTemplateSequence"],
}  # fmt: skip


@pytest.fixture
def world(tmp_path) -> Clinic:
    services = clinic(tmp_path / "telehealth")
    yield open_case(services)
    services.store.close()


def built(world: Clinic, photo_id: int) -> dict[InstanceKind, pydicom.Dataset]:
    """The photo's instances written as Part 10 files and read back, as any PACS would see them."""
    out = {}
    for instance in world.services.dicom.builder.photo_instances(photo_id):
        out[instance.kind] = reread(instance)
    return out


def reread(instance: BuiltInstance) -> pydicom.Dataset:
    import io

    buffer = io.BytesIO()
    instance.dataset.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def missing(ds: pydicom.Dataset, kind: InstanceKind) -> list[str]:
    return [name for name in REQUIRED[kind] if name not in ds]


def frame_sha256(ds: pydicom.Dataset) -> str:
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    # Fragments are padded to even length; the JPEG itself ends at its EOI marker.
    return hashlib.sha256(frame[: frame.rindex(b"\xff\xd9") + 2]).hexdigest()


def dciodvfy(ds: pydicom.Dataset, tmp_path: Path) -> list[str]:
    """dciodvfy's errors for `ds` (warnings are kept out: they note choices, such as an empty unknown laterality)."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy is not installed (Debian package dicom3tools; scripts/install.sh installs it)")
    path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    run = subprocess.run([tool, "-new", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def test_an_uploaded_photo_is_a_vl_photographic_image_carrying_the_stored_jpeg(world, tmp_path) -> None:
    taken = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    photo = world.photo(camera_time=taken)
    ds = built(world, photo.id)[InstanceKind.photo]
    assert ds.SOPClassUID == VL_PHOTO and ds.Modality == "XC" and missing(ds, InstanceKind.photo) == []
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit
    assert (str(ds.PatientName), ds.PatientID, ds.IssuerOfPatientID) == ("Jane Smith^", "9434765919", "NHS")
    assert ds.PatientBirthDate == "19500304" and "PatientComments" not in ds
    assert ds.AcquisitionDateTime == "20261120093000.000000+0000" and ds.TimezoneOffsetFromUTC == "+0000"
    assert "ImageComments" not in ds  # the camera's own date: nothing to explain
    assert (ds.Rows, ds.Columns) == (photo.height, photo.width) and ds.PhotometricInterpretation == "YBR_FULL_422"
    assert frame_sha256(ds) == photo.sha256  # the very file the store keeps: no second lossy generation
    assert ds.StudyDescription == f"Wound case {world.case_id}: left heel"
    assert dciodvfy(ds, tmp_path) == []


def test_a_consult_capture_is_a_secondary_capture_of_digitised_video(world, tmp_path) -> None:
    photo = world.photo(source=PhotoSource.consult_capture)
    ds = built(world, photo.id)[InstanceKind.capture]
    assert ds.SOPClassUID == SECONDARY_CAPTURE and ds.ConversionType == "DV" and missing(ds, InstanceKind.capture) == []
    assert frame_sha256(ds) == photo.sha256
    # A capture is taken the moment it arrives: its time is known, not an upload-time stand-in.
    assert "ImageComments" not in ds
    assert ds.AcquisitionDateTime.startswith(photo.received_at.strftime("%Y%m%d%H%M%S"))
    assert dciodvfy(ds, tmp_path) == []


def test_the_evidence_overlay_is_its_own_derived_instance_naming_the_photo(world, tmp_path) -> None:
    photo = world.photo()
    got = built(world, photo.id)
    overlay, image = got[InstanceKind.overlay], got[InstanceKind.photo]
    assert overlay.SOPClassUID == SECONDARY_CAPTURE and list(overlay.ImageType) == ["DERIVED", "SECONDARY"]
    assert overlay.ConversionType == "WSD" and missing(overlay, InstanceKind.overlay) == []
    assert overlay.SourceImageSequence[0].ReferencedSOPInstanceUID == image.SOPInstanceUID
    assert overlay.StudyInstanceUID == image.StudyInstanceUID and overlay.SeriesInstanceUID != image.SeriesInstanceUID
    png = world.services.evidence.read(read_analysis(world.services.store, world.gp, photo.id).evidence_path)
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        assert overlay.pixel_array.tobytes() == np.asarray(img.convert("RGB")).tobytes()  # lossless from the PNG
    assert dciodvfy(overlay, tmp_path) == []


def test_the_measurements_are_a_tid_1500_report_with_the_model_as_observer(world, tmp_path) -> None:
    photo = world.photo()
    got = built(world, photo.id)
    sr, image = got[InstanceKind.measurements], got[InstanceKind.photo]
    assert sr.SOPClassUID == COMPREHENSIVE_3D_SR and missing(sr, InstanceKind.measurements) == []
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == ("COMPLETE", "UNVERIFIED", "PRELIMINARY")
    assert (sr.PatientID, sr.StudyInstanceUID) == (image.PatientID, image.StudyInstanceUID)
    stored = read_analysis(world.services.store, world.gp, photo.id).assessment.measurement
    said = read_measurements(sr)
    assert said.area_cm2 == pytest.approx(stored.area_cm2) and said.length_cm == pytest.approx(stored.length_cm)
    assert said.width_cm == pytest.approx(stored.width_cm) and set(said.units) == {"cm2", "cm"}
    assert said.observer_device == "synthetic-mask"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert evidence.ReferencedSOPInstanceUID == image.SOPInstanceUID
    assert dciodvfy(sr, tmp_path) == []


def test_a_photo_the_model_could_not_measure_has_no_report(world) -> None:
    photo = world.photo(with_marker=False)  # no scale marker: area not measured
    assert set(built(world, photo.id)) == {InstanceKind.photo, InstanceKind.overlay}


def test_a_photo_without_a_camera_date_says_its_time_is_the_upload_time(world, tmp_path) -> None:
    photo = world.photo(camera_time=None)
    got = built(world, photo.id)
    for kind in (InstanceKind.photo, InstanceKind.overlay):
        assert got[kind].ImageComments == UNKNOWN_CAPTURE_TIME
    assert got[InstanceKind.photo].AcquisitionDateTime.startswith(photo.received_at.strftime("%Y%m%d%H%M%S"))
    assert dciodvfy(got[InstanceKind.photo], tmp_path) == []


def test_a_patient_without_identity_gets_empty_type_2_values_and_a_local_placeholder_id(tmp_path) -> None:
    services = clinic(tmp_path / "telehealth")
    try:
        world = open_case(services, NOBODY, site=None)
        ds = built(world, world.photo().id)[InstanceKind.photo]
        assert (str(ds.PatientName), ds.PatientBirthDate, ds.PatientSex) == ("", "", "")
        assert (ds.PatientID, ds.IssuerOfPatientID) == (f"SCOPECAST-P{world.patient_id}", "SCOPECAST")
        assert "local placeholder" in ds.PatientComments and "no name, date of birth, identifier" in ds.PatientComments
        assert ds.StudyDescription.endswith("site not recorded")
        assert dciodvfy(ds, tmp_path) == []
    finally:
        services.store.close()


def test_uids_are_kept_per_case_visit_and_photo_across_exports(world, tmp_path) -> None:
    first = world.photo(camera_time=datetime(2026, 11, 2, 10, tzinfo=UTC))
    same_day = world.photo(camera_time=datetime(2026, 11, 2, 11, tzinfo=UTC))
    next_visit = world.photo(camera_time=datetime(2026, 11, 9, 10, tzinfo=UTC))
    one = export_case(world.services.dicom.builder, world.case_id, tmp_path / "one")
    two = export_case(world.services.dicom.builder, world.case_id, tmp_path / "two")
    assert [(f.kind, f.sop_instance_uid) for f in one.files] == [(f.kind, f.sop_instance_uid) for f in two.files]
    assert len({f.sop_instance_uid for f in one.files}) == len(one.files) == 9
    images = {f.photo_id: pydicom.dcmread(f.path) for f in one.files if f.kind is InstanceKind.photo}
    assert (
        len({ds.StudyInstanceUID for ds in images.values()}) == 1 and one.study_uid == images[first.id].StudyInstanceUID
    )
    assert images[first.id].SeriesInstanceUID == images[same_day.id].SeriesInstanceUID  # one visit, one series
    assert images[first.id].SeriesInstanceUID != images[next_visit.id].SeriesInstanceUID
    assert [images[p.id].InstanceNumber for p in (first, same_day)] == [1, 2]


def test_export_refuses_a_case_without_photos_and_an_unknown_case(world, tmp_path) -> None:
    empty = world.services.store.create_case(world.gp, world.patient_id, "right shin")
    with pytest.raises(NothingToExport, match=f"case {empty.id} has no photos"):
        export_case(world.services.dicom.builder, empty.id, tmp_path / "out")
    with pytest.raises(NotFound, match="no case 999"):
        export_case(world.services.dicom.builder, 999, tmp_path / "out")
