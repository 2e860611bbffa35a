"""CaseStore: the database and the photo files behind one object, with access checks and audit on every call.

Every method is synchronous (database and disk I/O): async callers run them in a worker thread.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from telehealth.errors import Conflict, Forbidden, InvalidDate, NotFound
from telehealth.passwords import PasswordPolicy
from telehealth.photo_files import PhotoFiles
from telehealth.photo_intake import CleanPhoto
from telehealth.records import (
    Actor,
    CaseRecord,
    FileState,
    PhotoRecord,
    PhotoSource,
    Role,
    UserRecord,
    WoundType,
    as_utc,
    utc_now,
)
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.database import Database
from telehealth.store.tables import Base, PatientRow, PhotoSubmissionRow, UserRow, WoundCaseRow
from telehealth.store.visibility import (
    visible_case,
    visible_cases,
    visible_patient,
    visible_photo,
)

log = logging.getLogger(__name__)


def case_record(row: WoundCaseRow) -> CaseRecord:
    return CaseRecord(
        row.id,
        row.patient_id,
        row.status,
        row.label,
        as_utc(row.created_at),
        None if row.wound_type is None else WoundType(row.wound_type),
        row.onset_date,
    )


def photo_record(row: PhotoSubmissionRow) -> PhotoRecord:
    received = as_utc(row.received_at)
    return PhotoRecord(
        row.id,
        row.case_id,
        received,
        row.sha256,
        row.width,
        row.height,
        row.byte_size,
        row.media_type,
        row.file_state,
        received if row.taken_at is None else as_utc(row.taken_at),
        PhotoSource(row.source or PhotoSource.patient_upload.value),
    )


class CaseStore:
    def __init__(self, db: Database, files: PhotoFiles, passwords: PasswordPolicy) -> None:
        self.db = db
        self.files = files
        # The password policy lives here so that add_user(store, ...) applies the same rules as the API.
        self.passwords = passwords

    def close(self) -> None:
        """Close the database's connections (at shutdown)."""
        self.db.dispose()

    # -- callers ---------------------------------------------------------------------------------------------

    def has_users(self) -> bool:
        with self.db.session() as s:
            return s.scalars(select(UserRow.id).limit(1)).first() is not None

    def user_record(self, actor: Actor) -> UserRecord:
        with self.db.session() as s:
            user = s.get(UserRow, actor.user_id)
            if user is None:
                raise NotFound("no such user")
            return UserRecord(user.id, user.email, Role(user.role), user.display_name)

    # -- cases -----------------------------------------------------------------------------------------------

    def list_cases(self, actor: Actor) -> list[CaseRecord]:
        with self.db.session() as s:
            rows = s.scalars(visible_cases(actor).order_by(WoundCaseRow.id)).all()
            for row in rows:
                record_audit(s, actor.user_id, AuditAction.view, "wound_case", row.id)
            return [case_record(r) for r in rows]

    def create_case(
        self,
        actor: Actor,
        patient_id: int | None,
        label: str | None,
        wound_type: WoundType | None = None,
        onset_date: date | None = None,
    ) -> CaseRecord:
        """A new wound case; InvalidDate (nothing saved) for an onset in the future or before the patient's birth."""
        if onset_date is not None and onset_date > utc_now().date() + timedelta(days=1):
            raise InvalidDate(f"a wound's onset cannot be in the future: {onset_date.isoformat()}")
        with self.db.session() as s:
            if actor.role is Role.patient:
                own = s.scalars(select(PatientRow).where(PatientRow.user_id == actor.user_id)).first()
                if own is None or (patient_id is not None and patient_id != own.id):
                    raise NotFound(f"no patient {patient_id}")
                patient = own
            elif actor.role in (Role.gp, Role.admin):
                if patient_id is None:
                    raise Conflict("patient_id is required")
                patient = visible_patient(s, actor, patient_id)
            else:
                raise Forbidden(f"role {actor.role.value} may not open cases")
            if onset_date is not None and patient.birth_date is not None and onset_date < patient.birth_date:
                raise InvalidDate(
                    f"a wound's onset ({onset_date.isoformat()}) cannot be before the patient's date of birth "
                    f"({patient.birth_date.isoformat()})"
                )
            row = WoundCaseRow(
                patient_id=patient.id,
                created_by=actor.user_id,
                created_at=utc_now(),
                status="open",
                label=label,
                wound_type=None if wound_type is None else wound_type.value,
                onset_date=onset_date,
            )
            s.add(row)
            s.flush()
            record_audit(s, actor.user_id, AuditAction.create, "wound_case", row.id)
            return case_record(row)

    def require_case(self, actor: Actor, case_id: int) -> CaseRecord:
        """The case if the actor may see it (NotFound otherwise); not audited: used to refuse early, not to show."""
        with self.db.session() as s:
            return case_record(visible_case(s, actor, case_id))

    def case_with_photos(self, actor: Actor, case_id: int) -> tuple[CaseRecord, list[PhotoRecord]]:
        with self.db.session() as s:
            case = visible_case(s, actor, case_id)
            photos = s.scalars(
                select(PhotoSubmissionRow).where(PhotoSubmissionRow.case_id == case_id).order_by(PhotoSubmissionRow.id)
            ).all()
            record_audit(s, actor.user_id, AuditAction.view, "wound_case", case_id)
            return case_record(case), [photo_record(p) for p in photos]

    # -- photos ----------------------------------------------------------------------------------------------

    def photo_for_idempotency_key(self, actor: Actor, key: str) -> PhotoRecord | None:
        with self.db.session() as s:
            row = s.scalars(
                select(PhotoSubmissionRow).where(
                    PhotoSubmissionRow.uploaded_by == actor.user_id, PhotoSubmissionRow.idempotency_key == key
                )
            ).first()
            return None if row is None else photo_record(row)

    def add_photo(
        self,
        actor: Actor,
        case_id: int,
        photo: CleanPhoto,
        idempotency_key: str | None,
        source: PhotoSource = PhotoSource.patient_upload,
    ) -> tuple[PhotoRecord, bool]:
        """Store the file durably, then commit its row; returns (receipt, created). created is False when the
        Idempotency-Key was already used for this case (the original receipt comes back)."""
        self.require_case(actor, case_id)
        # The file is on disk before the row exists, so a committed row always has its file. A crash in between
        # leaves only an unreferenced file, which start-up reconciliation quarantines.
        self.files.put(photo.sha256, photo.data)
        now = utc_now()
        try:
            with self.db.session() as s:
                visible_case(s, actor, case_id)
                if idempotency_key is not None:
                    prior = self._by_key(s, actor, idempotency_key)
                    if prior is not None:
                        return self._replay(prior, case_id), False
                row = PhotoSubmissionRow(
                    case_id=case_id,
                    uploaded_by=actor.user_id,
                    received_at=now,
                    taken_at=photo.taken_at or now,
                    sha256=photo.sha256,
                    width=photo.width,
                    height=photo.height,
                    byte_size=len(photo.data),
                    media_type=photo.media_type,
                    idempotency_key=idempotency_key,
                    file_state=FileState.stored.value,
                    source=source.value,
                )
                s.add(row)
                s.flush()
                record_audit(s, actor.user_id, AuditAction.create, "photo", row.id)
                record = photo_record(row)
        except IntegrityError:
            # Two retries with one key racing (possible on PostgreSQL): the loser returns the winner's receipt.
            if idempotency_key is None:
                raise
            prior_record = self.photo_for_idempotency_key(actor, idempotency_key)
            if prior_record is None:
                raise
            if prior_record.case_id != case_id:
                raise Conflict("Idempotency-Key already used for another case") from None
            return prior_record, False
        log.info("photo stored", extra={"photo_id": record.id, "case_id": case_id})
        return record, True

    def set_photo_taken_at(self, actor: Actor, photo_id: int, taken_at: datetime) -> PhotoRecord:
        """A clinician corrects when a photo was taken (its visit); audited. Not in the future, not before 1900."""
        if actor.role not in (Role.gp, Role.admin):
            raise Forbidden("only the patient's GP or an admin changes a photo's date")
        taken_at = as_utc(taken_at)
        if taken_at > utc_now() + timedelta(days=1):  # a day of slack: the clinic and the server may be in other zones
            raise InvalidDate(f"a photo cannot be taken in the future: {taken_at.date().isoformat()}")
        if taken_at.year < 1900:
            raise InvalidDate(f"not a plausible date for a photo: {taken_at.date().isoformat()}")
        with self.db.session() as s:
            row = visible_photo(s, actor, photo_id)
            born = s.scalars(
                select(PatientRow.birth_date)
                .join(WoundCaseRow, WoundCaseRow.patient_id == PatientRow.id)
                .where(WoundCaseRow.id == row.case_id)
            ).first()
            if born is not None and taken_at.date() < born:
                raise InvalidDate(
                    f"a photo cannot be taken before the patient's date of birth ({born.isoformat()}): "
                    f"{taken_at.date().isoformat()}"
                )
            row.taken_at = taken_at
            record_audit(s, actor.user_id, AuditAction.edit, "photo_taken_at", photo_id)
            return photo_record(row)

    def read_photo(self, actor: Actor, photo_id: int, what: str = "photo") -> tuple[PhotoRecord, bytes]:
        with self.db.session() as s:
            row = visible_photo(s, actor, photo_id)
            if row.file_state != FileState.stored.value or not self.files.exists(row.sha256):
                raise NotFound(f"photo {photo_id} file is missing; please submit it again")
            record_audit(s, actor.user_id, AuditAction.view, what, photo_id)
            record = photo_record(row)
        return record, self.files.read(record.sha256)

    def row_counts(self) -> dict[str, int]:
        """Rows per table (operations and tests: proves a refused request changed nothing)."""
        with self.db.session() as s:
            return {t.name: s.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}

    @staticmethod
    def _by_key(s, actor: Actor, key: str) -> PhotoSubmissionRow | None:
        return s.scalars(
            select(PhotoSubmissionRow).where(
                PhotoSubmissionRow.uploaded_by == actor.user_id, PhotoSubmissionRow.idempotency_key == key
            )
        ).first()

    @staticmethod
    def _replay(prior: PhotoSubmissionRow, case_id: int) -> PhotoRecord:
        if prior.case_id != case_id:
            raise Conflict("Idempotency-Key already used for another case")
        return photo_record(prior)
