"""Who is calling: bearer tokens (and the session cookie for page GETs), checked against live accounts and roles."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from telehealth.case_store import CaseStore
from telehealth.errors import Forbidden, InvalidSession
from telehealth.records import Actor
from telehealth.session_tokens import SESSION_COOKIE, SessionTokens
from telehealth.tables import Role

# The cookie is only honoured for reads: a page's <img> cannot send a bearer header, but accepting the cookie on
# writes would open the door to cross-site request forgery.
_COOKIE_METHODS = frozenset({"GET", "HEAD"})


class Authenticator:
    def __init__(self, store: CaseStore, tokens: SessionTokens) -> None:
        self.store = store
        self.tokens = tokens

    def token_from(self, request: Request) -> str | None:
        header = request.headers.get("authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise InvalidSession("use 'Authorization: Bearer <token>'")
            return value.strip()
        if request.method in _COOKIE_METHODS:
            return request.cookies.get(SESSION_COOKIE)
        return None

    def actor(self, request: Request) -> Actor:
        """Blocking (one database read): call it from a sync dependency, which FastAPI runs in its threadpool."""
        token = self.token_from(request)
        if token is None:
            raise InvalidSession("not logged in: missing bearer token")
        actor = self.store.active_actor(self.tokens.verify(token))
        if actor is None:
            raise InvalidSession("account disabled or removed")
        return actor

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
