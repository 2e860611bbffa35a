"""Checks on who a patient is, before anything is saved: a name, a plausible date of birth, a well-formed
identifier (an NHS number's check digit is verified, so one mistyped digit is caught at the desk)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from telehealth.errors import InvalidPatient
from telehealth.records import IdentifierKind, PatientIdentity, utc_now

_MRN = re.compile(r"[A-Za-z0-9][A-Za-z0-9/\-.]{0,63}")
_OLDEST_BIRTH_YEAR = 1900


def clean_name(name: str) -> str:
    """The name as it will be shown: Unicode-normalised (NFC) and single-spaced; InvalidPatient when blank."""
    text = " ".join(unicodedata.normalize("NFC", name).split())
    if not text:
        raise InvalidPatient("the patient's name is required")
    if len(text) > 200:
        raise InvalidPatient("the patient's name is longer than 200 characters")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise InvalidPatient("the patient's name contains control characters")
    return text


def check_birth_date(birth_date: date, today: date | None = None) -> date:
    today = today or utc_now().date()
    if birth_date > today:
        raise InvalidPatient(f"a date of birth cannot be in the future: {birth_date.isoformat()}")
    if birth_date.year < _OLDEST_BIRTH_YEAR:
        raise InvalidPatient(f"not a plausible date of birth: {birth_date.isoformat()}")
    return birth_date


def nhs_number_is_valid(digits: str) -> bool:
    """The NHS number's modulus-11 check: weights 10..2 on the first nine digits; 11 - (sum mod 11) is the tenth
    (11 reads as 0; 10 means the number was never issued)."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def clean_identifier(kind: IdentifierKind, value: str) -> str:
    """The identifier as stored (an NHS number without its spaces); InvalidPatient naming what is wrong."""
    text = value.strip()
    if kind is IdentifierKind.nhs_number:
        digits = re.sub(r"[\s-]", "", text)
        if len(digits) != 10 or not digits.isdigit():
            raise InvalidPatient("an NHS number has 10 digits")
        if not nhs_number_is_valid(digits):
            raise InvalidPatient("this NHS number's check digit is wrong: please check it was typed correctly")
        return digits
    if not _MRN.fullmatch(text):
        raise InvalidPatient("an MRN is 1 to 64 letters, digits, '-', '/' or '.'")
    return text


def clean_identity(
    full_name: str, birth_date: date, identifier_kind: IdentifierKind, identifier_value: str
) -> PatientIdentity:
    return PatientIdentity(
        full_name=clean_name(full_name),
        birth_date=check_birth_date(birth_date),
        identifier_kind=identifier_kind,
        identifier_value=clean_identifier(identifier_kind, identifier_value),
    )
