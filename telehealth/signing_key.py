"""The clinic's report-signing key: loaded from the configured PEM files, or a self-signed DEVELOPMENT key made on
first run under DATA_DIR/signing (so a fresh install signs at once, and says loudly that it is not for clinical use).

Blocking (file reads, key generation): call it at start-up, before serving.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.sign.signers import SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

from telehealth.photo_files import atomic_write
from telehealth.private_files import FILE_MODE, private_dir
from telehealth.settings import TelehealthSettings

DEVELOPMENT_LABEL = "DEVELOPMENT KEY - NOT FOR CLINICAL USE"
_DEVELOPMENT_CN = "scopecast development report-signing key"
_DEVELOPMENT_KEY = "development-key.pem"
_DEVELOPMENT_CERT = "development-cert.pem"


class SigningKeyError(ValueError):
    """The configured key or certificate cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ClinicSigningKey:
    signer: SimpleSigner
    certificate: asn1_x509.Certificate
    development: bool  # the certificate is a generated development one: the PDF's signature says so

    @property
    def subject(self) -> str:
        return str(self.certificate.subject.human_friendly)


def is_development_certificate(cert: asn1_x509.Certificate) -> bool:
    """Marked in the certificate itself, so a development key copied to a configured path still says what it is."""
    units = cert.subject.native.get("organizational_unit_name")
    names = units if isinstance(units, list) else [units]
    return DEVELOPMENT_LABEL in names


def load_certificate(path: Path) -> asn1_x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing certificate {path}: {exc.strerror}") from None
    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError:
        raise SigningKeyError(f"{path} is not a PEM or DER X.509 certificate") from None
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def load_signing_key(key_path: Path, cert_path: Path, passphrase: bytes | None = None) -> ClinicSigningKey:
    cert = load_certificate(cert_path)
    try:
        key_data = key_path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key {key_path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(key_data, password=passphrase)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"cannot load the signing key {key_path}: {exc}") from None
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if public != cert.public_key.dump():
        raise SigningKeyError(f"the signing key {key_path} does not belong to the certificate {cert_path}")
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    registry = SimpleCertificateStore.from_certs([cert])
    signer = SimpleSigner(signing_cert=cert, signing_key=asn1_keys.PrivateKeyInfo.load(der), cert_registry=registry)
    return ClinicSigningKey(signer, cert, is_development_certificate(cert))


def create_development_key(key_path: Path, cert_path: Path, now: datetime | None = None) -> None:
    """A fresh P-256 key and a self-signed certificate for it, both files owner-only."""
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _DEVELOPMENT_CN),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEVELOPMENT_LABEL),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scopecast"),
        ]
    )
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,  # non-repudiation: what a clinician's signature on a report asserts
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    private_dir(key_path.parent)
    private_dir(cert_path.parent)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    atomic_write(key_path, pem)
    os.chmod(key_path, FILE_MODE)
    # The certificate last: a key without its certificate is detected and reported, never silently half-made.
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(cert_path, FILE_MODE)


def development_paths(settings: TelehealthSettings) -> tuple[Path, Path]:
    return (
        settings.development_signing_dir / _DEVELOPMENT_KEY,
        settings.development_signing_dir / _DEVELOPMENT_CERT,
    )


def signing_cert_path(settings: TelehealthSettings) -> Path:
    """The certificate that report signatures made here are checked against."""
    return settings.signing_cert_path or development_paths(settings)[1]


def clinic_signing_key(settings: TelehealthSettings) -> ClinicSigningKey:
    """The configured key; without one, the development key (made on first run). A configured path that is missing
    is an error, never a reason to generate: that would sign with a key nobody trusts."""
    secret = settings.signing_key_passphrase
    passphrase = None if secret is None else secret.get_secret_value().encode()
    if settings.signing_key_path is not None and settings.signing_cert_path is not None:
        return load_signing_key(settings.signing_key_path, settings.signing_cert_path, passphrase)
    key_path, cert_path = development_paths(settings)
    if not key_path.exists() and not cert_path.exists():
        create_development_key(key_path, cert_path)
    elif not cert_path.exists():
        raise SigningKeyError(
            f"{key_path} exists without its certificate {cert_path}: remove the key to make a new one"
        )
    return load_signing_key(key_path, cert_path)
