"""Signed, expiring session tokens (itsdangerous, HMAC-SHA256 with the settings' secret) carrying a session id.

The signature lets garbage be refused without a database read; whether the session is still live (not signed out,
account enabled) is the session table's answer (sessions.py).
"""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from telehealth.errors import InvalidSession

SESSION_COOKIE = "scopecast_session"


class SessionTokens:
    def __init__(self, secret: str, ttl_s: int) -> None:
        # The salt keeps these tokens from being valid for any other use of the same secret.
        self._serializer = URLSafeTimedSerializer(
            secret, salt="scopecast.telehealth.session", signer_kwargs={"digest_method": hashlib.sha256}
        )
        self.ttl_s = ttl_s

    def issue(self, session_id: str) -> str:
        return self._serializer.dumps({"sid": session_id})

    def verify(self, token: str) -> str:
        """The session id in a well-signed, unexpired token; InvalidSession otherwise."""
        try:
            payload = self._serializer.loads(token, max_age=self.ttl_s)
        except SignatureExpired:
            raise InvalidSession("session expired, please log in again") from None
        except BadSignature:
            raise InvalidSession("invalid session token") from None
        sid = payload.get("sid") if isinstance(payload, dict) else None
        if not isinstance(sid, str) or not sid:
            raise InvalidSession("invalid session token")  # e.g. a token of the old stateless kind, {"uid": ...}
        return sid
