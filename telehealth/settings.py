"""Telehealth settings from SCOPECAST_TELEHEALTH_* environment variables, validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelehealthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCOPECAST_TELEHEALTH_", extra="forbid")

    data_dir: Path = Field(
        Path("var/telehealth"), description="photo files, quarantine and the default SQLite database"
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL (postgresql+psycopg://...); empty: SQLite with WAL at DATA_DIR/telehealth.db"
    )
    # Required with no default: a made-up secret would silently log everyone out on every restart.
    secret_key: SecretStr = Field(..., min_length=32, description="signs session tokens; keep it out of the repository")
    session_ttl_s: int = Field(
        8 * 3600, ge=60, le=30 * 24 * 3600, description="a session ends this long after sign-in, however active"
    )
    session_idle_s: int = Field(
        30 * 60, ge=60, le=30 * 24 * 3600, description="a session unused this long has ended (a shared clinic PC)"
    )
    invite_ttl_s: int = Field(72 * 3600, ge=60, le=30 * 24 * 3600)
    consult_ttl_s: int = Field(4 * 3600, ge=60, le=7 * 24 * 3600, description="how long a video consult link works")
    public_base_url: str = Field(
        "", description="prefix for invite links sent to patients, e.g. https://clinic.example"
    )
    cookie_secure: bool = Field(True, description="mark the session cookie Secure (turn off only for plain-http tests)")

    login_failures_per_account: int = Field(
        5, ge=1, le=1000, description="failed sign-ins allowed per account per window"
    )
    login_failures_per_address: int = Field(
        20,
        ge=0,
        le=100_000,
        description="failed sign-ins allowed per client address per window (0: no address limit; "
        "behind a proxy, run uvicorn with --proxy-headers so the address is the client's)",
    )
    login_window_s: int = Field(15 * 60, ge=10, le=24 * 3600)
    password_min_length: int = Field(12, ge=8, le=128)
    # Argon2id cost: the defaults follow RFC 9106's second recommended option; tests lower them to stay fast.
    argon2_time_cost: int = Field(3, ge=1, le=20)
    argon2_memory_kib: int = Field(64 * 1024, ge=8, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(1, ge=1, le=16)

    max_upload_bytes: int = Field(20_000_000, ge=1024, le=500_000_000, description="largest accepted photo file")
    max_json_bytes: int = Field(64 * 1024, ge=1024, le=10_000_000, description="largest accepted JSON body")
    max_image_pixels: int = Field(
        40_000_000,
        ge=10_000,
        le=500_000_000,
        description="most pixels a photo may decode to (a larger JPEG is decoded at reduced scale)",
    )
    max_decoded_bytes: int = Field(
        100_000_000,
        ge=1_000_000,
        le=16_000_000_000,
        description="memory one photo may take decoded (pixels x bytes a pixel, at least its RGB copy, plus the decoder's "
        "buffers), checked from the header: the decompression-bomb guard; an upload's peak is about twice this",
    )
    max_concurrent_decodes: int = Field(
        2,
        ge=1,
        le=64,
        description="photos decoded at once; more uploads wait their turn, so the peak is this times the above",
    )
    min_brightness: float = Field(
        35.0, ge=0, le=255, description="mean luminance (0-255) below which a photo is too dark"
    )
    min_sharpness: float = Field(
        20.0, ge=0, description="variance of the Laplacian at 512 px long side below which a photo is too blurred"
    )
    min_photo_side: int = Field(200, ge=16, description="pixels on a photo's shorter side below which it is too small")
    stored_jpeg_quality: int = Field(92, ge=50, le=100)
    thumbnail_px: int = Field(320, ge=32, le=2048)
    wound_model_path: Path | None = Field(
        None,
        description="ONNX wound segmenter for photos; empty: perception/weights/wound-accurate.onnx, else wound.onnx "
        "(photos stay 'not analysed' without one)",
    )
    marker_mm: float = Field(20.0, gt=0, le=200, description="printed side of the ArUco scale marker's black square")
    case_events_poll_s: float = Field(
        2.0, ge=0.05, le=60, description="how often an open case page's event stream looks for changes"
    )
    clinic_timezone: str = Field(
        "UTC", description="IANA zone (e.g. Europe/London) in which reports show times: signing, drafting"
    )

    signing_key_path: Path | None = Field(
        None,
        description="PEM private key the clinic signs report PDFs with (PAdES); empty: "
        "DATA_DIR/signing/development-key.pem, a self-signed DEVELOPMENT key made on first run",
    )
    signing_cert_path: Path | None = Field(
        None, description="PEM certificate of the signing key; set together with SIGNING_KEY_PATH"
    )
    signing_key_passphrase: SecretStr | None = Field(None, description="passphrase of an encrypted signing key")
    mrn_system: str = Field(
        "urn:scopecast:mrn",
        min_length=4,
        description="FHIR Identifier.system of the clinic's MRNs, e.g. the hospital's urn:oid:... or its URL",
    )

    clinic_wide_similar_cases: bool = Field(
        False,
        description="similar cases from every clinician's patients, those not the caller's shown de-identified "
        "(no name, date of birth or identifier; dates relative) and every such query audited; off: own patients only",
    )
    similar_index: Literal["auto", "sqlite-vec", "in-process"] = Field(
        "auto",
        description="the similar-cases vector index: auto is sqlite-vec on SQLite when it loads, else the in-process "
        "exact index (faiss) built from the stored vectors; sqlite-vec refuses to start without it",
    )
    recording_retention_days: int = Field(
        365,
        ge=1,
        le=36_500,
        description="recordings older than this many days are deleted (checked hourly, each deletion audited)",
    )

    @model_validator(mode="after")
    def _signing_paths_together(self) -> TelehealthSettings:
        # One without the other would sign with a key whose certificate says someone else.
        if (self.signing_key_path is None) != (self.signing_cert_path is None):
            raise ValueError("set both SIGNING_KEY_PATH and SIGNING_CERT_PATH, or neither (a development key)")
        return self

    @field_validator("clinic_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/London") from None
        return value

    @property
    def clinic_zone(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)

    @property
    def photos_dir(self) -> Path:
        return self.data_dir / "photos"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"

    @property
    def signed_reports_dir(self) -> Path:
        return self.data_dir / "signed-reports"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def similar_index_path(self) -> Path:
        return self.data_dir / "similar-index.sqlite"

    @property
    def development_signing_dir(self) -> Path:
        return self.data_dir / "signing"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'telehealth.db').resolve()}"
