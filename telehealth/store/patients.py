"""Patient records: a GP adds a patient (name, date of birth, identifier), corrects them, and reads them.

Identity is shown only to clinicians of that patient (their GP, an admin, a surgeon consulted on one of their cases)
and to the patient; every read of it is audited. Blocking database calls: run them in a worker thread.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from telehealth.errors import DuplicateIdentifier, Forbidden, NotFound
from telehealth.records import Actor, IdentifierKind, PatientIdentity, PatientRecord, Role, as_utc, utc_now
from telehealth.store.audit import AuditAction, record_audit
from telehealth.store.cases import CaseStore
from telehealth.store.tables import PatientRow
from telehealth.store.visibility import visible_case, visible_patient

_IDENTIFIER_NAMES = {IdentifierKind.mrn: "MRN", IdentifierKind.nhs_number: "NHS number"}


def patient_record(row: PatientRow) -> PatientRecord:
    return PatientRecord(
        id=row.id,
        identity=PatientIdentity(
            full_name=row.full_name,
            birth_date=row.birth_date,
            identifier_kind=None if row.identifier_kind is None else IdentifierKind(row.identifier_kind),
            identifier_value=row.identifier_value,
        ),
        gp_user_id=row.gp_user_id,
        has_account=row.user_id is not None,
        created_at=as_utc(row.created_at),
    )


def _refuse_duplicate(s: Session, identity: PatientIdentity, own_id: int | None) -> None:
    if identity.identifier_kind is None or identity.identifier_value is None:
        return
    other = s.scalars(
        select(PatientRow.id).where(
            PatientRow.identifier_kind == identity.identifier_kind.value,
            PatientRow.identifier_value == identity.identifier_value,
        )
    ).first()
    if other is not None and other != own_id:
        raise _duplicate(identity.identifier_kind)


def _duplicate(kind: IdentifierKind) -> DuplicateIdentifier:
    # Which patient holds it is not said: the caller may not be that patient's clinician.
    name = _IDENTIFIER_NAMES[kind]
    return DuplicateIdentifier(
        f"this {name} is already recorded for another patient: check the number, or find the existing record "
        "(an admin can see every patient)"
    )


def _write_identity(row: PatientRow, identity: PatientIdentity) -> None:
    row.full_name = identity.full_name
    row.birth_date = identity.birth_date
    row.identifier_kind = None if identity.identifier_kind is None else identity.identifier_kind.value
    row.identifier_value = identity.identifier_value


def add_patient(store: CaseStore, actor: Actor, identity: PatientIdentity) -> PatientRecord:
    """A new patient record; a GP becomes the patient's GP. DuplicateIdentifier (409) when the MRN or NHS number is
    taken: nothing is saved. `identity` must come from patient_identity.clean_identity."""
    if actor.role not in (Role.gp, Role.admin):
        raise Forbidden("only a GP or an admin adds patients")
    try:
        with store.db.session() as s:
            _refuse_duplicate(s, identity, None)
            row = PatientRow(
                user_id=None, gp_user_id=actor.user_id if actor.role is Role.gp else None, created_at=utc_now()
            )
            _write_identity(row, identity)
            s.add(row)
            s.flush()
            record_audit(s, actor.user_id, AuditAction.create, "patient", row.id)
            return patient_record(row)
    except IntegrityError:  # two desks adding one MRN at once: the unique constraint decides
        assert identity.identifier_kind is not None
        raise _duplicate(identity.identifier_kind) from None


def update_patient(store: CaseStore, actor: Actor, patient_id: int, identity: PatientIdentity) -> PatientRecord:
    """Correct a patient's identity (the patient's GP or an admin); audited as an edit."""
    if actor.role not in (Role.gp, Role.admin):
        raise Forbidden("only the patient's GP or an admin changes a patient's details")
    try:
        with store.db.session() as s:
            row = visible_patient(s, actor, patient_id)
            _refuse_duplicate(s, identity, row.id)
            _write_identity(row, identity)
            record_audit(s, actor.user_id, AuditAction.edit, "patient", row.id)
            return patient_record(row)
    except IntegrityError:
        assert identity.identifier_kind is not None
        raise _duplicate(identity.identifier_kind) from None


def read_patient(store: CaseStore, actor: Actor, patient_id: int) -> PatientRecord:
    """One patient's record, audited as a view; NotFound when the actor is not their clinician."""
    with store.db.session() as s:
        row = visible_patient(s, actor, patient_id)
        record_audit(s, actor.user_id, AuditAction.view, "patient", row.id)
        return patient_record(row)


def patient_for_case(store: CaseStore, actor: Actor, case_id: int) -> PatientRecord:
    """The patient a case belongs to, for anyone who may see the case (surgeons consulted on it included); audited
    as a view of the patient. Used by reports and exports, which carry the patient's identity."""
    with store.db.session() as s:
        case = visible_case(s, actor, case_id)
        row = s.get(PatientRow, case.patient_id)
        if row is None:  # the foreign key makes this impossible short of a damaged database
            raise NotFound(f"case {case_id} has no patient record")
        record_audit(s, actor.user_id, AuditAction.view, "patient", row.id)
        return patient_record(row)


def visible_patients(store: CaseStore, actor: Actor) -> list[PatientRecord]:
    """The patients an actor looks after (a GP theirs, an admin all), newest first; each listed one is audited."""
    if actor.role not in (Role.gp, Role.admin):
        raise Forbidden("only a GP or an admin lists patients")
    with store.db.session() as s:
        query = select(PatientRow).order_by(PatientRow.id.desc())
        if actor.role is Role.gp:
            query = query.where(PatientRow.gp_user_id == actor.user_id)
        rows = s.scalars(query).all()
        for row in rows:
            record_audit(s, actor.user_id, AuditAction.view, "patient", row.id)
        return [patient_record(r) for r in rows]
