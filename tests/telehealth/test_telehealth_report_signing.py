"""PAdES signatures on report PDFs: sign and verify, tampering caught with its reason, the clinic's key (configured
or a development one), the signed PDF recorded with the signature or not at all, and `scopecast verify-report`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fpdf import FPDF
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from telehealth_testutil import SECRET, fast_settings

from telehealth.report_signing import SignatureCheck, sign_report_pdf, verify_report_pdf
from telehealth.signed_pdf_files import SignedPdfChanged, SignedPdfFiles
from telehealth.signing_key import (
    DEVELOPMENT_LABEL,
    ClinicSigningKey,
    SigningKeyError,
    clinic_signing_key,
    create_development_key,
    development_paths,
    load_signing_key,
)

REPO = Path(__file__).resolve().parents[2]


def a_pdf(text: str = "Wound assessment report 1, version 1") -> bytes:
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 5, text * 20)
    return bytes(pdf.output())


@pytest.fixture
def dev_key(tmp_path) -> ClinicSigningKey:
    return clinic_signing_key(fast_settings(tmp_path / "t"))


def signed_pdf(key: ClinicSigningKey) -> bytes:
    return sign_report_pdf(a_pdf(), key, "gp_a@clinic.test", "1 December 2026, 17:00 UTC", "report 1 v1 signed")


def page_streams(pdf: bytes) -> list[bytes]:
    """Every stream's decoded bytes, PDF string escapes (\\ooo) undone: the signature's appearance is one of them."""
    out = []
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, flags=re.S):
        try:
            data = zlib.decompress(raw)
        except zlib.error:
            data = raw
        out.append(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), data))
    return out


def signed_ranges(pdf: bytes) -> list[tuple[int, int]]:
    """The /ByteRange the signature covers: everything but its own /Contents hex."""
    found = re.search(rb"/ByteRange \[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert found is not None
    a, b, c, d = (int(x) for x in found.groups())
    return [(a, a + b), (c, c + d)]


def test_sign_then_verify(dev_key: ClinicSigningKey) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    pdf = signed_pdf(dev_key)
    check = verify_report_pdf(pdf, [dev_key.certificate])
    assert check.valid and check.reason == "valid", check
    assert check.signer_name == "gp_a@clinic.test" and check.development_key
    assert check.signed_at is not None and check.signed_at >= before
    assert check.certificate is not None and DEVELOPMENT_LABEL in check.certificate
    # The visible appearance says who, when, and that this key is not for clinical use.
    shown = b"".join(page_streams(pdf))
    for text in (DEVELOPMENT_LABEL, "Signed by gp_a@clinic.test on 1 December 2026, 17:00 UTC"):
        assert text.encode() in shown, text


@pytest.mark.parametrize("where", [0.05, 0.3, 0.6, 0.95])
def test_a_byte_flipped_pdf_fails_with_a_reason(dev_key: ClinicSigningKey, where: float) -> None:
    pdf = bytearray(signed_pdf(dev_key))
    (a0, a1), (c0, c1) = signed_ranges(bytes(pdf))
    covered = [*range(a0, a1), *range(c0, c1)]
    at = covered[int(where * (len(covered) - 1))]
    pdf[at] ^= 0x01
    check = verify_report_pdf(bytes(pdf), [dev_key.certificate])
    assert not check.valid, (at, check)
    assert any(word in check.reason for word in ("changed", "damaged", "does not verify")), check.reason


def test_bytes_added_after_signing_fail(dev_key: ClinicSigningKey) -> None:
    check = verify_report_pdf(signed_pdf(dev_key) + b"\n% appended\n", [dev_key.certificate])
    assert not check.valid and "content was added that the signature does not cover" in check.reason


def test_another_key_is_not_trusted(dev_key: ClinicSigningKey, tmp_path) -> None:
    other = clinic_signing_key(fast_settings(tmp_path / "elsewhere"))
    check = verify_report_pdf(signed_pdf(other), [dev_key.certificate])
    assert not check.valid and "not trusted here" in check.reason


def test_not_a_pdf_and_an_unsigned_pdf(dev_key: ClinicSigningKey) -> None:
    assert verify_report_pdf(b"hello", [dev_key.certificate]).reason.startswith("not a readable PDF")
    assert verify_report_pdf(a_pdf(), [dev_key.certificate]) == SignatureCheck(False, "the PDF carries no signature")


def test_the_development_key_is_made_once_and_kept_private(tmp_path) -> None:
    settings = fast_settings(tmp_path / "t")
    first = clinic_signing_key(settings)
    again = clinic_signing_key(settings)
    assert first.development and first.certificate.dump() == again.certificate.dump()
    key_path, cert_path = development_paths(settings)
    assert {oct(p.stat().st_mode & 0o777) for p in (key_path, cert_path, key_path.parent)} <= {"0o600", "0o700"}
    cert_path.unlink()
    with pytest.raises(SigningKeyError, match="exists without its certificate"):
        clinic_signing_key(settings)


def test_a_configured_key_is_used_and_checked(tmp_path) -> None:
    key, cert = tmp_path / "clinic-key.pem", tmp_path / "clinic-cert.pem"
    create_development_key(key, cert)
    settings = fast_settings(tmp_path / "t", signing_key_path=key, signing_cert_path=cert)
    assert clinic_signing_key(settings).certificate.dump() == load_signing_key(key, cert).certificate.dump()
    assert not development_paths(settings)[0].exists(), "a configured key never makes a development one"
    with pytest.raises(SigningKeyError, match=r"cannot read the signing key .*absent\.pem"):
        clinic_signing_key(
            fast_settings(tmp_path / "t", signing_key_path=tmp_path / "absent.pem", signing_cert_path=cert)
        )
    other_key, other_cert = tmp_path / "k2.pem", tmp_path / "c2.pem"
    create_development_key(other_key, other_cert)
    with pytest.raises(SigningKeyError, match="does not belong to the certificate"):
        load_signing_key(other_key, cert)
    with pytest.raises(ValidationError, match="set both SIGNING_KEY_PATH and SIGNING_CERT_PATH"):
        fast_settings(tmp_path / "t", signing_key_path=key)


def test_a_stored_signed_pdf_changed_on_disk_is_refused(tmp_path, dev_key: ClinicSigningKey) -> None:
    files = SignedPdfFiles(tmp_path / "signed")
    stored = files.put(signed_pdf(dev_key))
    assert files.read(stored.name)[:5] == b"%PDF-"
    path = tmp_path / "signed" / stored.name
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(SignedPdfChanged, match="no longer matches its sha256"):
        files.read(stored.name)


def _version_to_sign(services) -> tuple[int, object]:  # noqa: ANN001
    """A GP's draft report on a case of their patient, straight through the store."""
    from telehealth.accounts import add_user
    from telehealth.records import Actor, Role
    from telehealth.store.reports import start_report
    from telehealth.store.tables import PatientRow

    store = services.store
    gp = add_user(store, "gp@clinic.test", "correct horse battery", Role.gp)
    actor = Actor(gp.id, Role.gp)
    with store.db.session() as s:
        patient = PatientRow(user_id=None, gp_user_id=gp.id, created_at=datetime.now(UTC))
        s.add(patient)
        s.flush()
        patient_id = patient.id
    case = store.create_case(actor, patient_id, "left heel")
    return start_report(store, actor, case.id, {"text": "draft"}).id, actor


def test_a_failed_seal_leaves_the_version_a_draft_and_signed_pdfs_never_change(services) -> None:
    from telehealth.records import ReportStatus
    from telehealth.store.reports import sign, view_report
    from telehealth.store.signed_pdfs import SealedPdf, signed_pdf
    from telehealth.store.tables import ReportVersionRow

    version_id, actor = _version_to_sign(services)

    def broken(_record, _replaces):  # noqa: ANN001, ANN202
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        sign(services.store, actor, version_id, seal=broken)
    with services.store.db.session() as s:
        report_id = s.get(ReportVersionRow, version_id).report_id
    assert view_report(services.store, actor, report_id, audit=None).current.status is ReportStatus.draft
    assert signed_pdf(services.store, version_id) is None

    sealed = SealedPdf("ab/" + "ab" * 32 + ".pdf", "ab" * 32, 10, "CN=test")
    sign(services.store, actor, version_id, seal=lambda _r, _p: sealed)
    assert signed_pdf(services.store, version_id).sha256 == "ab" * 32
    for statement in ("UPDATE signed_report_pdfs SET byte_size = 11", "DELETE FROM signed_report_pdfs"):
        with pytest.raises(DBAPIError, match="append-only"), services.store.db.engine.begin() as conn:
            conn.exec_driver_sql(statement)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scopecast.cli", "verify-report", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        timeout=120,
    )


def test_scopecast_verify_report(tmp_path) -> None:
    data_dir = tmp_path / "t"
    key = clinic_signing_key(fast_settings(data_dir))
    good = tmp_path / "good.pdf"
    good.write_bytes(signed_pdf(key))
    tampered = bytearray(good.read_bytes())
    (a0, a1), _ = signed_ranges(bytes(tampered))
    tampered[(a0 + a1) // 2] ^= 0x01
    bad = tmp_path / "tampered.pdf"
    bad.write_bytes(bytes(tampered))
    cert = development_paths(fast_settings(data_dir))[1]

    ok = _cli(str(good), "--cert", str(cert))
    assert ok.returncode == 0, ok.stderr
    assert "valid: signed by gp_a@clinic.test" in ok.stdout and DEVELOPMENT_LABEL in ok.stdout
    failed = _cli(str(bad), "--cert", str(cert))
    assert failed.returncode == 1 and f"{bad}: INVALID: " in failed.stdout, failed.stdout + failed.stderr
    # Without --cert: the clinic's certificate from the settings (here the development one under DATA_DIR).
    env = {"SCOPECAST_TELEHEALTH_DATA_DIR": str(data_dir), "SCOPECAST_TELEHEALTH_SECRET_KEY": SECRET}
    assert _cli(str(good), env=env).returncode == 0
    missing = _cli(str(tmp_path / "absent.pdf"), "--cert", str(cert))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    no_cert = _cli(str(good), "--cert", str(tmp_path / "absent.pem"))
    assert no_cert.returncode == 2 and "cannot read the signing certificate" in no_cert.stderr
