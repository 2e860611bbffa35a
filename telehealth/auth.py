"""Who is calling: bearer tokens (and the session cookie for page GETs), checked against live sessions and accounts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import Request

from telehealth.errors import Forbidden, InvalidSession
from telehealth.records import Actor, Role
from telehealth.session_tokens import SESSION_COOKIE, SessionTokens
from telehealth.store.cases import CaseStore
from telehealth.store.sessions import live_session_actor, open_session, revoke_session

# The cookie is only honoured for reads: a page's <img> cannot send a bearer header, but accepting the cookie on
# writes would open the door to cross-site request forgery.
_COOKIE_METHODS = frozenset({"GET", "HEAD"})


class Authenticator:
    def __init__(self, store: CaseStore, tokens: SessionTokens) -> None:
        self.store = store
        self.tokens = tokens

    def sign_in(self, user_id: int) -> tuple[str, datetime]:
        """Open a session for an authenticated user: (token, expires_at). Blocking (one database write)."""
        made = open_session(self.store, user_id, self.tokens.ttl_s)
        return self.tokens.issue(made.session_id), made.expires_at

    def actor_for_token(self, token: str) -> Actor:
        """The caller a token stands for, or InvalidSession with the reason (invalid, expired, signed out, account
        disabled). Blocking (one database read): async callers run it via asyncio.to_thread."""
        session_id = self.tokens.verify(token)
        return live_session_actor(self.store, session_id)

    def sign_out(self, token: str) -> bool:
        """Revoke the token's session; False when it named no live session (a second sign-out, or garbage)."""
        try:
            session_id = self.tokens.verify(token)
        except InvalidSession:
            return False
        return revoke_session(self.store, session_id)

    def token_from(self, request: Request, cookie: bool | None = None) -> str | None:
        """The bearer token, else the session cookie where allowed (`cookie` None: for reads only)."""
        header = request.headers.get("authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise InvalidSession("use 'Authorization: Bearer <token>'")
            return value.strip()
        if cookie if cookie is not None else request.method in _COOKIE_METHODS:
            return request.cookies.get(SESSION_COOKIE)
        return None

    def actor(self, request: Request) -> Actor:
        """Blocking (one database read): call it from a sync dependency, which FastAPI runs in its threadpool."""
        token = self.token_from(request)
        if token is None:
            raise InvalidSession("not logged in: missing bearer token")
        return self.actor_for_token(token)

    def require(self, *roles: Role) -> Callable[[Request], Actor]:
        """A FastAPI dependency giving the caller, refusing (403) roles not listed; no roles: any logged-in user."""
        allowed = frozenset(roles)

        def caller(request: Request) -> Actor:
            actor = self.actor(request)
            if allowed and actor.role not in allowed:
                names = " or ".join(sorted(r.value for r in allowed))
                raise Forbidden(f"this needs role {names}, you are {actor.role.value}")
            return actor

        return caller
