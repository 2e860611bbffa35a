"""Signed, expiring session tokens (itsdangerous, HMAC-SHA256 with the settings' secret)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from telehealth.errors import InvalidSession

SESSION_COOKIE = "scopecast_session"


class SessionTokens:
    def __init__(self, secret: str, ttl_s: int) -> None:
        # The salt keeps these tokens from being valid for any other use of the same secret.
        self._serializer = URLSafeTimedSerializer(secret, salt="scopecast.telehealth.session", signer_kwargs={"digest_method": hashlib.sha256})
        self.ttl_s = ttl_s

    def issue(self, user_id: int) -> tuple[str, datetime]:
        token = self._serializer.dumps({"uid": user_id})
        return token, datetime.now(UTC) + timedelta(seconds=self.ttl_s)

    def verify(self, token: str) -> int:
        try:
            payload = self._serializer.loads(token, max_age=self.ttl_s)
        except SignatureExpired:
            raise InvalidSession("session expired, please log in again") from None
        except BadSignature:
            raise InvalidSession("invalid session token") from None
        uid = payload.get("uid") if isinstance(payload, dict) else None
        if not isinstance(uid, int):
            raise InvalidSession("invalid session token")
        return uid

