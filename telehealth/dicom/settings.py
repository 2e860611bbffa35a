"""DICOM settings from SCOPECAST_DICOMWEB_* environment variables: the PACS to push to (SCOPECAST_DICOMWEB_URL) and
how hard to try."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DicomSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCOPECAST_DICOMWEB_", extra="forbid")

    url: str | None = Field(
        None,
        description="DICOMweb base URL of the PACS (e.g. http://pacs:8042/dicom-web); empty: nothing is pushed, "
        "`scopecast export-dicom` still writes files",
    )
    timeout_s: float = Field(30.0, gt=0, le=600, description="connect and read timeout of one STOW-RS request")
    retry_base_s: float = Field(5.0, gt=0, le=3600, description="wait after a first failure; doubles each time")
    retry_max_s: float = Field(3600.0, gt=0, le=7 * 24 * 3600, description="longest wait between attempts")
    poll_s: float = Field(5.0, gt=0, le=3600, description="how often the sender looks for due instances")
    uid_root: str | None = Field(
        None,
        description="the organisation's registered UID root (e.g. 1.2.826.0.1.1234); empty: UUID-derived 2.25 UIDs",
    )
    mrn_issuer: str = Field(
        "SCOPECAST", max_length=64, description="IssuerOfPatientID for MRNs (the hospital's assigning authority)"
    )
    institution: str = Field("", max_length=64, description="InstitutionName written into every instance")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"SCOPECAST_DICOMWEB_URL must start with http:// or https://, not {value!r}")
        return value.rstrip("/")

    @field_validator("uid_root")
    @classmethod
    def _uid_root(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.rstrip(".")
        parts = value.split(".")
        if not all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts) or len(value) > 30:
            raise ValueError(
                f"uid_root {value!r} is not a DICOM UID root: dot-separated numbers without leading zeros, "
                "at most 30 characters (the rest of the 64 is the generated part)"
            )
        return value
