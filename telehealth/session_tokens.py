"""Signed, expiring session tokens (itsdangerous, HMAC-SHA256 with the settings' secret) carrying a session id.

The signature lets garbage be refused without a database read; whether the session is still live (not signed out,
account enabled) is the session table's answer (sessions.py).
"""

from __future__ import annotations

import hashlib
import hmac

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from telehealth.errors import InvalidSession

SESSION_COOKIE = "scopecast_session"
CSRF_HEADER = "X-CSRF-Token"
JOIN_TICKET_TTL_S = 120  # long enough to open a camera and connect, short enough to be useless if it leaks


class SessionTokens:
    def __init__(self, secret: str, ttl_s: int, idle_s: int | None = None) -> None:
        # The salt keeps these tokens from being valid for any other use of the same secret.
        self._serializer = URLSafeTimedSerializer(
            secret, salt="scopecast.telehealth.session", signer_kwargs={"digest_method": hashlib.sha256}
        )
        self._join_tickets = URLSafeTimedSerializer(
            secret, salt="scopecast.telehealth.consult-join", signer_kwargs={"digest_method": hashlib.sha256}
        )
        self._csrf_key = hashlib.sha256(b"scopecast.telehealth.csrf|" + secret.encode()).digest()
        self.ttl_s = ttl_s
        self.idle_s = idle_s

    def csrf_token(self, session_id: str) -> str:
        """The session's CSRF token: an HMAC of its id, so it needs no storage and another site cannot know it.
        A page reads it from /api/session (same-origin only) and sends it with every cookie-authenticated write."""
        return hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).hexdigest()

    def csrf_matches(self, session_id: str, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf_token(session_id), presented)

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

    def join_ticket(self, session_id: str, room_id: str) -> str:
        """A short-lived credential for one consult room, standing for the session: the call window joins with it,
        so the session token itself stays in its HttpOnly cookie."""
        return self._join_tickets.dumps({"sid": session_id, "room": room_id})

    def session_for_join(self, credential: str, room_id: str) -> str:
        """The session id behind a join credential: a session token, or a join ticket for this room issued within
        JOIN_TICKET_TTL_S; InvalidSession otherwise."""
        try:
            return self.verify(credential)
        except InvalidSession:
            pass
        try:
            payload = self._join_tickets.loads(credential, max_age=JOIN_TICKET_TTL_S)
        except SignatureExpired:
            raise InvalidSession("join ticket expired: open the call window again") from None
        except BadSignature:
            raise InvalidSession("invalid session token") from None
        if not isinstance(payload, dict) or payload.get("room") != room_id or not isinstance(payload.get("sid"), str):
            raise InvalidSession("this join ticket is for another consult")
        return str(payload["sid"])
