"""DICOM in the database: the UIDs kept per case, visit and photo, the sources an instance is built from, and the
outbox of instances on their way to the PACS.

These calls run as the system (the background sender, the operator's export): callers that act for a person check
the case with CaseStore.require_case first. Sending to the PACS is audited as an export. Blocking: run them in a
worker thread.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from telehealth.dicom.identity import dicom_patient, new_uid
from telehealth.dicom.records import (
    DicomStudy,
    FailureKind,
    InstanceKind,
    InstanceSource,
    InstanceUids,
    MeasuredWound,
    OutboxItem,
    OutboxState,
    PhotoImage,
)
from telehealth.errors import NotFound
from telehealth.evidence_files import EvidenceFiles
from telehealth.records import FileState, IdentifierKind, PatientIdentity, PhotoSource, as_utc, utc_now
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.tables import (
    AnalysisRow,
    DicomInstanceRow,
    DicomOutboxRow,
    DicomSeriesRow,
    DicomStudyRow,
    PatientRow,
    PhotoSubmissionRow,
    WoundCaseRow,
)
from telehealth.wound import StoredAnalysis

_ERROR_CHARS = 500


def case_photo_ids(store: CaseStore, case_id: int) -> list[int]:
    """The case's photos, oldest first; NotFound when there is no such case."""
    with store.db.session() as s:
        if s.get(WoundCaseRow, case_id) is None:
            raise NotFound(f"no case {case_id}")
        return list(
            s.scalars(
                select(PhotoSubmissionRow.id)
                .where(PhotoSubmissionRow.case_id == case_id)
                .order_by(PhotoSubmissionRow.id)
            )
        )


def _study_row(s: Session, case_id: int, uid_root: str | None) -> DicomStudyRow:
    row = s.get(DicomStudyRow, case_id)
    if row is None:
        row = DicomStudyRow(case_id=case_id, study_uid=new_uid(uid_root), created_at=utc_now())
        s.add(row)
        s.flush()
    return row


def photo_source(
    store: CaseStore, evidence: EvidenceFiles, photo_id: int, mrn_issuer: str, uid_root: str | None
) -> InstanceSource:
    """Everything one photo's instances are made of: patient, case, the photo file, its latest analysis and evidence
    image. NotFound when the photo or its file is gone. The case's study UID is made here on first use."""
    try:
        return _photo_source(store, evidence, photo_id, mrn_issuer, uid_root)
    except IntegrityError:  # another thread made the case's study UID at the same moment: read theirs
        return _photo_source(store, evidence, photo_id, mrn_issuer, uid_root)


def _photo_source(
    store: CaseStore, evidence: EvidenceFiles, photo_id: int, mrn_issuer: str, uid_root: str | None
) -> InstanceSource:
    with store.db.session() as s:
        photo = s.get(PhotoSubmissionRow, photo_id)
        if photo is None:
            raise NotFound(f"no photo {photo_id}")
        if photo.file_state != FileState.stored.value or not store.files.exists(photo.sha256):
            raise NotFound(f"photo {photo_id}'s file is missing: it cannot be made into DICOM")
        case = s.get(WoundCaseRow, photo.case_id)
        patient = None if case is None else s.get(PatientRow, case.patient_id)
        if case is None or patient is None:  # foreign keys make this a damaged database
            raise NotFound(f"photo {photo_id} has no case or patient record")
        study_row = _study_row(s, case.id, uid_root)
        analysis = s.scalars(
            select(AnalysisRow).where(AnalysisRow.photo_id == photo_id).order_by(AnalysisRow.id.desc())
        ).first()
        identity = PatientIdentity(
            patient.full_name,
            patient.birth_date,
            None if patient.identifier_kind is None else IdentifierKind(patient.identifier_kind),
            patient.identifier_value,
        )
        received = as_utc(photo.received_at)
        taken = received if photo.taken_at is None else as_utc(photo.taken_at)
        origin = PhotoSource(photo.source or PhotoSource.patient_upload.value)
        label = case.label or "site not recorded"
        study = DicomStudy(
            case.id, study_row.study_uid, as_utc(case.created_at), f"Wound case {case.id}: {label}", case.label
        )
        sha256, width, height = photo.sha256, photo.width, photo.height
        evidence_name = None if analysis is None else analysis.evidence_path
        measured = _measured(analysis)
    # A capture is taken the moment it is received; an upload whose camera gave no date was dated on arrival.
    known = origin is PhotoSource.consult_capture or taken != received
    image = PhotoImage(
        photo_id, origin is PhotoSource.consult_capture, store.files.read(sha256), width, height, taken, received, known
    )
    png = None
    if evidence_name is not None:
        try:
            png = evidence.read(evidence_name)
        except (OSError, ValueError):
            png = None  # the overlay is left out; the photo and its SR still go
    return InstanceSource(dicom_patient(patient.id, identity, mrn_issuer), study, image, png, measured)


def _measured(row: AnalysisRow | None) -> MeasuredWound | None:
    if row is None:
        return None
    assessment = StoredAnalysis.model_validate(row.result).assessment
    if assessment is None:
        return None
    m = assessment.measurement
    return MeasuredWound(
        m.area_cm2, m.length_cm, m.width_cm, assessment.model.name, assessment.model.version, assessment.analysed_at
    )


def instance_uids(store: CaseStore, photo_id: int, kind: InstanceKind, uid_root: str | None) -> InstanceUids:
    """The photo's instance of `kind`: its UIDs as kept, or new ones (study per case, series per visit day and kind)
    made and kept now."""
    for attempt in range(2):
        try:
            with store.db.session() as s:
                return _instance_uids(s, photo_id, kind, uid_root)
        except IntegrityError:  # two callers made the same series or instance at once: the other one's wins
            if attempt:
                raise
    raise AssertionError("unreachable")


def _instance_uids(s: Session, photo_id: int, kind: InstanceKind, uid_root: str | None) -> InstanceUids:
    photo = s.get(PhotoSubmissionRow, photo_id)
    if photo is None:
        raise NotFound(f"no photo {photo_id}")
    study = _study_row(s, photo.case_id, uid_root)
    existing = s.scalars(
        select(DicomInstanceRow).where(DicomInstanceRow.photo_id == photo_id, DicomInstanceRow.kind == kind.value)
    ).first()
    if existing is not None:
        series = s.get(DicomSeriesRow, existing.series_id)
        assert series is not None  # foreign key
        return InstanceUids(
            study.study_uid,
            series.series_uid,
            series.series_number,
            existing.sop_instance_uid,
            existing.instance_number,
        )
    # The visit is the day the photo was taken, as in the trend; it is fixed here, when the UIDs are made.
    visit = as_utc(photo.taken_at or photo.received_at).date()
    series = s.scalars(
        select(DicomSeriesRow).where(
            DicomSeriesRow.case_id == photo.case_id,
            DicomSeriesRow.visit_date == visit,
            DicomSeriesRow.kind == kind.value,
        )
    ).first()
    if series is None:
        count = s.scalar(select(func.count()).where(DicomSeriesRow.case_id == photo.case_id)) or 0
        series = DicomSeriesRow(
            case_id=photo.case_id,
            visit_date=visit,
            kind=kind.value,
            series_uid=new_uid(uid_root),
            series_number=count + 1,
        )
        s.add(series)
        s.flush()
    number = (s.scalar(select(func.count()).where(DicomInstanceRow.series_id == series.id)) or 0) + 1
    row = DicomInstanceRow(
        photo_id=photo_id,
        kind=kind.value,
        series_id=series.id,
        sop_instance_uid=new_uid(uid_root),
        instance_number=number,
        created_at=utc_now(),
    )
    s.add(row)
    s.flush()
    return InstanceUids(study.study_uid, series.series_uid, series.series_number, row.sop_instance_uid, number)


def _item(s: Session, instance: DicomInstanceRow, row: DicomOutboxRow) -> OutboxItem:
    photo = s.get(PhotoSubmissionRow, instance.photo_id)
    assert photo is not None  # foreign key
    return OutboxItem(
        photo_id=instance.photo_id,
        case_id=photo.case_id,
        kind=InstanceKind(instance.kind),
        sop_instance_uid=instance.sop_instance_uid,
        state=OutboxState(row.state),
        attempts=row.attempts,
        failure=None if row.failure is None else FailureKind(row.failure),
        http_status=row.http_status,
        last_error=row.last_error,
        next_attempt_at=None if row.state == OutboxState.sent.value else as_utc(row.next_attempt_at),
        sent_at=None if row.sent_at is None else as_utc(row.sent_at),
    )


def enqueue(store: CaseStore, sop_instance_uids: list[str], again: bool = False) -> list[OutboxItem]:
    """Queue instances (their UIDs made by instance_uids) for the PACS, due now. One already queued stays as it is
    but becomes due now; one already sent is left alone unless `again` (a clinician resends the case)."""
    now = utc_now()
    out = []
    with store.db.session() as s:
        for uid in sop_instance_uids:
            instance = s.scalars(select(DicomInstanceRow).where(DicomInstanceRow.sop_instance_uid == uid)).first()
            if instance is None:
                raise NotFound(f"no DICOM instance {uid}")
            row = s.get(DicomOutboxRow, instance.id)
            if row is None:
                row = DicomOutboxRow(
                    instance_id=instance.id,
                    state=OutboxState.queued.value,
                    attempts=0,
                    queued_at=now,
                    next_attempt_at=now,
                )
                s.add(row)
            elif row.state != OutboxState.sent.value or again:
                if row.state == OutboxState.sent.value:
                    row.state, row.sent_at, row.attempts = OutboxState.queued.value, None, 0
                row.next_attempt_at = now
            s.flush()
            out.append(_item(s, instance, row))
    return out


def due_items(store: CaseStore, now: datetime, limit: int = 20) -> list[OutboxItem]:
    """Instances not yet sent whose next attempt is due, the longest waiting first."""
    with store.db.session() as s:
        rows = s.execute(
            select(DicomInstanceRow, DicomOutboxRow)
            .join(DicomOutboxRow, DicomOutboxRow.instance_id == DicomInstanceRow.id)
            .where(DicomOutboxRow.state != OutboxState.sent.value, DicomOutboxRow.next_attempt_at <= now)
            .order_by(DicomOutboxRow.next_attempt_at, DicomInstanceRow.id)
            .limit(limit)
        ).all()
        return [_item(s, instance, row) for instance, row in rows]


def next_due_at(store: CaseStore) -> datetime | None:
    """When the next unsent instance is due (None: nothing waits)."""
    with store.db.session() as s:
        value = s.scalar(
            select(func.min(DicomOutboxRow.next_attempt_at)).where(DicomOutboxRow.state != OutboxState.sent.value)
        )
        return None if value is None else as_utc(value)


def _outbox_row(s: Session, sop_instance_uid: str) -> tuple[DicomInstanceRow, DicomOutboxRow]:
    instance = s.scalars(select(DicomInstanceRow).where(DicomInstanceRow.sop_instance_uid == sop_instance_uid)).first()
    row = None if instance is None else s.get(DicomOutboxRow, instance.id)
    if instance is None or row is None:
        raise NotFound(f"DICOM instance {sop_instance_uid} is not in the outbox")
    return instance, row


def record_sent(store: CaseStore, sop_instance_uid: str) -> OutboxItem:
    """The PACS stored it: sent, audited as an export of the photo."""
    with store.db.session() as s:
        instance, row = _outbox_row(s, sop_instance_uid)
        row.state, row.attempts, row.sent_at = OutboxState.sent.value, row.attempts + 1, utc_now()
        row.failure, row.http_status, row.last_error = None, None, None
        record_audit(s, None, AuditAction.export, "photo", instance.photo_id)
        return _item(s, instance, row)


def record_failure(
    store: CaseStore, sop_instance_uid: str, kind: FailureKind, reason: str, http_status: int | None, retry_at: datetime
) -> OutboxItem:
    """A failed attempt: the reason is kept and the instance stays queued until `retry_at`."""
    with store.db.session() as s:
        instance, row = _outbox_row(s, sop_instance_uid)
        row.state, row.attempts = OutboxState.failed.value, row.attempts + 1
        row.failure, row.http_status, row.last_error = kind.value, http_status, reason[:_ERROR_CHARS]
        row.next_attempt_at = retry_at
        return _item(s, instance, row)


def case_outbox(store: CaseStore, case_id: int) -> list[OutboxItem]:
    """Every queued or sent instance of the case, by photo then kind."""
    with store.db.session() as s:
        rows = s.execute(
            select(DicomInstanceRow, DicomOutboxRow)
            .join(DicomOutboxRow, DicomOutboxRow.instance_id == DicomInstanceRow.id)
            .join(PhotoSubmissionRow, PhotoSubmissionRow.id == DicomInstanceRow.photo_id)
            .where(PhotoSubmissionRow.case_id == case_id)
            .order_by(DicomInstanceRow.photo_id, DicomInstanceRow.id)
        ).all()
        return [_item(s, instance, row) for instance, row in rows]


def audit_case_export(store: CaseStore, actor_id: int | None, case_id: int) -> None:
    """An export of the case's DICOM (to a folder, or queued for the PACS by a clinician), on the audit trail."""
    with store.db.session() as s:
        record_audit(s, actor_id, AuditAction.export, "wound_case", case_id)


def analysed_photos_not_queued(store: CaseStore) -> list[int]:
    """Photos whose analysis is saved but whose image is not in the outbox: the server stopped between the two, or
    the PACS was configured after they arrived. Queued at start-up, so every kept image reaches the PACS."""
    with store.db.session() as s:
        queued = (
            select(DicomInstanceRow.photo_id)
            .join(DicomOutboxRow, DicomOutboxRow.instance_id == DicomInstanceRow.id)
            .where(DicomInstanceRow.kind.in_([InstanceKind.photo.value, InstanceKind.capture.value]))
        )
        return list(
            s.scalars(
                select(PhotoSubmissionRow.id)
                .where(PhotoSubmissionRow.id.in_(select(AnalysisRow.photo_id)))
                .where(PhotoSubmissionRow.id.not_in(queued))
                .where(PhotoSubmissionRow.file_state == FileState.stored.value)
                .order_by(PhotoSubmissionRow.id)
            )
        )


def make_unsent_due(store: CaseStore) -> int:
    """Every unsent instance due now (at start-up: a restart is often what fixed the PACS); returns how many."""
    now = utc_now()
    with store.db.session() as s:
        rows = s.scalars(select(DicomOutboxRow).where(DicomOutboxRow.state != OutboxState.sent.value)).all()
        for row in rows:
            row.next_attempt_at = now
        return len(rows)
