"""`scopecast export-dicom --case ID --out DIR` against the configured telehealth store."""

from __future__ import annotations

import pydicom
import pytest
from dicom_world import clinic, open_case
from telehealth_testutil import SECRET

from scopecast.cli import main


@pytest.fixture
def configured(tmp_path, monkeypatch):
    data_dir = tmp_path / "telehealth"
    monkeypatch.setenv("SCOPECAST_TELEHEALTH_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SCOPECAST_TELEHEALTH_SECRET_KEY", SECRET)
    monkeypatch.delenv("SCOPECAST_DICOMWEB_URL", raising=False)
    services = clinic(data_dir)
    world = open_case(services)
    yield world
    services.store.close()


def test_export_writes_every_instance_of_the_case(configured, tmp_path, capsys) -> None:
    photo = configured.photo()
    out = tmp_path / "export"
    assert main(["export-dicom", "--case", str(configured.case_id), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == [
        f"photo{photo.id}-measurements.dcm",
        f"photo{photo.id}-overlay.dcm",
        f"photo{photo.id}-photo.dcm",
    ]
    assert "exported 3 instances" in printed.err and printed.out.count("\t") == 9
    assert pydicom.dcmread(out / f"photo{photo.id}-photo.dcm").PatientID == "9434765919"


def test_export_of_a_case_with_no_photos_says_so(configured, tmp_path, capsys) -> None:
    assert main(["export-dicom", "--case", str(configured.case_id), "--out", str(tmp_path / "x")]) == 2
    assert f"case {configured.case_id} has no photos" in capsys.readouterr().err


def test_export_of_an_unknown_case_or_to_a_file_says_so(configured, tmp_path, capsys) -> None:
    assert main(["export-dicom", "--case", "999", "--out", str(tmp_path / "x")]) == 2
    assert "no case 999" in capsys.readouterr().err
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["export-dicom", "--case", "1", "--out", str(a_file)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["export-dicom", "--case", "0", "--out", str(tmp_path / "x")]) == 2
    assert "must be a case id" in capsys.readouterr().err
