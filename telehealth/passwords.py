"""Password policy and Argon2id hashing."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from telehealth.errors import WeakPassword
from telehealth.settings import TelehealthSettings


class PasswordPolicy:
    def __init__(
        self, min_length: int = 10, time_cost: int = 3, memory_kib: int = 64 * 1024, parallelism: int = 1
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

    def check_strength(self, password: str) -> None:
        if len(password) < self.min_length:
            raise WeakPassword(f"password too short: at least {self.min_length} characters")
        if len(password) > 1024:
            raise WeakPassword("password too long: at most 1024 characters")
        if password.strip() != password or not password.strip():
            raise WeakPassword("password must not start or end with spaces")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy_hash, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
