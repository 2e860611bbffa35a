"""Password policy and Argon2id hashing."""

from __future__ import annotations

from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from telehealth.errors import WeakPassword
from telehealth.settings import TelehealthSettings

# zxcvbn's scale: 0-1 guessable in seconds to hours offline (common passwords, keyboard walks, repeats, dates),
# 2 in days, 3 and up "safely unguessable" for an online service behind the login throttle.
MIN_GUESS_SCORE = 3


class PasswordPolicy:
    def __init__(
        self, min_length: int = 12, time_cost: int = 3, memory_kib: int = 64 * 1024, parallelism: int = 1
    ) -> None:
        self.min_length = min_length
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # Verifying against this when the email is unknown makes a failed login take the same time either way,
        # so response times do not reveal which emails have accounts.
        self._dummy_hash = self._hasher.hash("not-a-real-password-0000")

    @classmethod
    def from_settings(cls, settings: TelehealthSettings) -> PasswordPolicy:
        return cls(
            settings.password_min_length,
            settings.argon2_time_cost,
            settings.argon2_memory_kib,
            settings.argon2_parallelism,
        )

    def check_strength(self, password: str, user_inputs: Sequence[str] = ()) -> None:
        """WeakPassword with a message to show when `password` is too short, too long, padded with spaces, or easy to
        guess: on zxcvbn's common-password and word lists, a keyboard walk or repeat, or built from `user_inputs`
        (the account's email)."""
        if len(password) < self.min_length:
            raise WeakPassword(f"password too short: at least {self.min_length} characters")
        if len(password) > 1024:
            raise WeakPassword("password too long: at most 1024 characters")
        if password.strip() != password or not password.strip():
            raise WeakPassword("password must not start or end with spaces")
        # zxcvbn's cost grows with length; the first 100 characters decide whether a password is guessable.
        inputs = [part for text in user_inputs for part in (text, *text.split("@"))]
        verdict = zxcvbn(password[:100], user_inputs=inputs)
        if verdict["score"] < MIN_GUESS_SCORE:
            warning = verdict["feedback"]["warning"] or "it is made of the account's email or a common pattern"
            raise WeakPassword(
                f"password too easy to guess: {warning.rstrip('.')}. Use a longer phrase of unrelated words"
            )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy_hash, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
