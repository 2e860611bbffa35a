"""Who may see which case: the one place the visibility rules live."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from telehealth.errors import NotFound
from telehealth.records import Actor, Role
from telehealth.store.tables import ConsultRow, PatientRow, PhotoSubmissionRow, WoundCaseRow


def visible_cases(actor: Actor) -> Select[WoundCaseRow]:
    """Cases the actor may see: a patient their own, a GP their patients', a surgeon those consulted on, admin all."""
    query = select(WoundCaseRow)
    if actor.role is Role.patient:
        return query.where(
            WoundCaseRow.patient_id.in_(select(PatientRow.id).where(PatientRow.user_id == actor.user_id))
        )
    if actor.role is Role.gp:
        return query.where(
            WoundCaseRow.patient_id.in_(select(PatientRow.id).where(PatientRow.gp_user_id == actor.user_id))
        )
    if actor.role is Role.surgeon:
        return query.where(
            WoundCaseRow.id.in_(select(ConsultRow.case_id).where(ConsultRow.surgeon_id == actor.user_id))
        )
    return query


def visible_patient(session: Session, actor: Actor, patient_id: int) -> PatientRow:
    query = select(PatientRow).where(PatientRow.id == patient_id)
    if actor.role is Role.patient:
        query = query.where(PatientRow.user_id == actor.user_id)
    elif actor.role is Role.gp:
        query = query.where(PatientRow.gp_user_id == actor.user_id)
    elif actor.role is not Role.admin:
        raise NotFound(f"no patient {patient_id}")
    patient = session.scalars(query).first()
    if patient is None:
        raise NotFound(f"no patient {patient_id}")
    return patient


def visible_case(session: Session, actor: Actor, case_id: int) -> WoundCaseRow:
    case = session.scalars(visible_cases(actor).where(WoundCaseRow.id == case_id)).first()
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def visible_photo(session: Session, actor: Actor, photo_id: int) -> PhotoSubmissionRow:
    photo = session.scalars(
        select(PhotoSubmissionRow)
        .where(PhotoSubmissionRow.id == photo_id)
        .where(PhotoSubmissionRow.case_id.in_(visible_cases(actor).with_only_columns(WoundCaseRow.id)))
    ).first()
    if photo is None:
        raise NotFound(f"no photo {photo_id}")
    return photo
