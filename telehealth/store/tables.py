"""The telehealth database schema as typed SQLAlchemy models (Alembic migrations create it; these read and write it).

Free-text patient data is kept out of every table except the few columns that must hold it (emails, case labels,
report bodies); the audit log holds only ids and verbs so it can be exported without redaction.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from telehealth.records import FileState, PhotoSource, ReportStatus, utc_now


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    # How signed reports name a clinician ("Dr Jane Smith"); null: the email stands in.
    display_name: Mapped[str | None] = mapped_column(String(120))


class PatientRow(Base):
    """The person: identity columns are null only on records made before patients had them (the GP page asks for
    them); an identifier is unique per kind, so one MRN cannot name two people."""

    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("identifier_kind", "identifier_value", name="uq_patient_identifier"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Null until the patient accepts the invite and gets an account.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), unique=True)
    gp_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    full_name: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    identifier_kind: Mapped[str | None] = mapped_column(String(16))
    identifier_value: Mapped[str | None] = mapped_column(String(64))


class InviteRow(Base):
    __tablename__ = "invites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Only a hash of the link's token is kept: a leaked database must not hand out working invite links.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SessionRow(Base):
    """A signed-in session: its token names it, signing out revokes it. Only a hash of the random session id is kept,
    so a leaked database hands out no live sessions."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last request it authenticated (written at most once a minute): the idle timeout counts from here.
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WoundCaseRow(Base):
    __tablename__ = "wound_cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    status: Mapped[str] = mapped_column(String(16), default="open")
    label: Mapped[str | None] = mapped_column(String(120))  # the wound's site, e.g. "left heel"
    wound_type: Mapped[str | None] = mapped_column(String(32))  # a records.WoundType value
    onset_date: Mapped[date | None] = mapped_column(Date)


class PhotoSubmissionRow(Base):
    __tablename__ = "photo_submissions"
    __table_args__ = (UniqueConstraint("uploaded_by", "idempotency_key", name="uq_photo_idempotency"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("wound_cases.id"), index=True)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    # The visit it belongs to: the camera's date, else the upload time; a GP may correct it (audited).
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    file_state: Mapped[str] = mapped_column(String(16), default=FileState.stored.value)
    source: Mapped[str] = mapped_column(String(24), default=PhotoSource.patient_upload.value)


class AnalysisRow(Base):
    """Placeholder filled by the wound-analysis module: which model looked at which photo and what it said."""

    __tablename__ = "analyses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photo_submissions.id"), index=True)
    model_name: Mapped[str] = mapped_column(String(120))
    model_version: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    evidence_path: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ConsultRow(Base):
    __tablename__ = "consults"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("wound_cases.id"), index=True)
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    surgeon_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class VideoConsultRow(Base):
    """A video call a clinician opened on a case. Only a hash of the patient's join key is kept, as for invites."""

    __tablename__ = "video_consults"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("wound_cases.id"), index=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    room_id: Mapped[str] = mapped_column(String(32), unique=True)
    patient_key_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReportRow(Base):
    __tablename__ = "reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("wound_cases.id"), index=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ReportVersionRow(Base):
    """One version of a report. A signed version never changes (a database trigger refuses it); an amendment is a
    new version that names the one it amends."""

    __tablename__ = "report_versions"
    __table_args__ = (UniqueConstraint("report_id", "version", name="uq_report_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=ReportStatus.draft.value)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_version_id: Mapped[int | None] = mapped_column(ForeignKey("report_versions.id"))


class AuditEventRow(Base):
    """Append-only (database triggers refuse UPDATE and DELETE): who did what to which object, and when."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)
    # No foreign key: the trail must outlive the account it names.
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int | None] = mapped_column(Integer)


class CaseExportKeyRow(Base):
    """Per-case secrets for de-identified export: a random date shift and a pseudonym, never sent to a client."""

    __tablename__ = "case_export_keys"
    case_id: Mapped[int] = mapped_column(ForeignKey("wound_cases.id"), primary_key=True)
    shift_days: Mapped[int] = mapped_column(Integer)
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class SignedReportPdfRow(Base):
    """The PAdES-signed PDF of a signed report version (its file is named by the sha256). Written in the signing
    transaction and never changed (database triggers refuse UPDATE and DELETE), like the version it seals."""

    __tablename__ = "signed_report_pdfs"
    version_id: Mapped[int] = mapped_column(ForeignKey("report_versions.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    byte_size: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(128))
    certificate_subject: Mapped[str] = mapped_column(String(512))  # which key signed it (a development one says so)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class DicomStudyRow(Base):
    """A case's DICOM study UID, made at its first export and never changed."""

    __tablename__ = "dicom_studies"
    case_id: Mapped[int] = mapped_column(ForeignKey("wound_cases.id"), primary_key=True)
    study_uid: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class DicomSeriesRow(Base):
    """One series per case, visit day and instance kind (photos, captures, overlays and SRs are separate series)."""

    __tablename__ = "dicom_series"
    __table_args__ = (UniqueConstraint("case_id", "visit_date", "kind", name="uq_dicom_series_visit_kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("wound_cases.id"), index=True)
    visit_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # a dicom.records.InstanceKind value
    series_uid: Mapped[str] = mapped_column(String(64), unique=True)
    series_number: Mapped[int] = mapped_column(Integer)


class DicomInstanceRow(Base):
    """The SOP instance UID of one of a photo's instances (its image, overlay or SR), kept for re-exports."""

    __tablename__ = "dicom_instances"
    __table_args__ = (UniqueConstraint("photo_id", "kind", name="uq_dicom_instance_photo_kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photo_submissions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    series_id: Mapped[int] = mapped_column(ForeignKey("dicom_series.id"), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    instance_number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class DicomOutboxRow(Base):
    """An instance's delivery to the PACS: queued until the PACS has stored it; a failure keeps it queued with the
    reason and the time of the next attempt, so nothing is lost while the PACS is down or across restarts."""

    __tablename__ = "dicom_outbox"
    instance_id: Mapped[int] = mapped_column(ForeignKey("dicom_instances.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # a dicom.records.OutboxState value
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[str | None] = mapped_column(String(16))  # a dicom.records.FailureKind value
    http_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PhotoEmbeddingRow(Base):
    """A photo's image embedding from one model version: the source of truth the similar-cases vector index is
    built from (the index is derived and rebuilt from these rows; a new model version adds rows, it never edits)."""

    __tablename__ = "photo_embeddings"
    __table_args__ = (UniqueConstraint("photo_id", "model_version", name="uq_photo_embedding_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photo_submissions.id"), index=True)
    model_name: Mapped[str] = mapped_column(String(120))
    model_version: Mapped[str] = mapped_column(String(64), index=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32 little-endian, unit length
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ClinicOptionsRow(Base):
    """Clinic-wide switches an admin sets from the app (one row, id 1); absent: the settings' defaults apply."""

    __tablename__ = "clinic_options"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_wide_similar_cases: Mapped[bool] = mapped_column(Boolean)
    updated_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class RecordingConsentRow(Base):
    """Consent to record a case's video: who gave it (the patient or a named representative), who took it down, for
    what use and what it covers; withdrawal keeps the row (the trail of what was allowed when)."""

    __tablename__ = "recording_consents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("wound_cases.id"), index=True)
    # Null: the patient consented themselves; otherwise the representative's name (free text the form must hold).
    representative_name: Mapped[str | None] = mapped_column(String(200))
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    consented_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    purpose: Mapped[str] = mapped_column(String(32))  # a records.RecordingPurpose value
    patient_video: Mapped[bool] = mapped_column(Boolean)
    patient_audio: Mapped[bool] = mapped_column(Boolean)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RecordingRow(Base):
    """One recording of a stream or consult on a case: its video file, its findings track, and how it ended."""

    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("wound_cases.id"), index=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("recording_consents.id"))
    started_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(16))  # "stream" or "consult"
    # File names inside the recordings folder (never paths from a request).
    video_file: Mapped[str] = mapped_column(String(128))
    findings_file: Mapped[str] = mapped_column(String(128))
    has_audio: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column(Float)
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    frames: Mapped[int | None] = mapped_column(Integer)
    # Why it ended early (disk full, consent withdrawn, stream ended); null for a clean stop.
    end_reason: Mapped[str | None] = mapped_column(String(200))
