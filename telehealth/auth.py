"""Who is calling: a bearer token, or the pages' session cookie (writes with it need the session's CSRF token),
checked against live sessions and accounts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import Request

from telehealth.errors import Forbidden, InvalidSession
from telehealth.records import Actor, Role
from telehealth.session_tokens import CSRF_HEADER, SESSION_COOKIE, SessionTokens
from telehealth.store.cases import CaseStore
from telehealth.store.sessions import live_session_actor, open_session, revoke_session, session_hash

SignOutListener = Callable[[str], None]

# Reads with the cookie need nothing more (a page's <img> cannot send a header, and SameSite=Strict keeps other
# sites' requests from carrying it); writes with it must also carry the session's CSRF token, which only a page of
# this origin can read.
_SAFE_METHODS = frozenset({"GET", "HEAD"})


class Authenticator:
    def __init__(self, store: CaseStore, tokens: SessionTokens) -> None:
        self.store = store
        self.tokens = tokens
        self._sign_out_listeners: list[SignOutListener] = []

    def add_sign_out_listener(self, listener: SignOutListener) -> Callable[[], None]:
        """`listener(sign_in_key)` runs after a session is signed out (on the signing-out thread: keep it quick), so
        what else was handed out for that sign-in (a Janus viewer token) can be taken back at once. Returns the call
        that removes it."""
        self._sign_out_listeners.append(listener)
        return lambda: self._sign_out_listeners.remove(listener)

    def sign_in_key_for(self, token: str) -> str:
        """A stable name for the sign-in behind `token` that is not itself a credential (the session id's hash, as the
        sessions table keeps it). Raises InvalidSession for a token that is not one of ours."""
        return session_hash(self.tokens.verify(token))

    def sign_in(self, user_id: int) -> tuple[str, datetime]:
        """Open a session for an authenticated user: (token, expires_at). Blocking (one database write)."""
        made = open_session(self.store, user_id, self.tokens.ttl_s)
        return self.tokens.issue(made.session_id), made.expires_at

    def actor_for_token(self, token: str, touch: bool = True) -> Actor:
        """The caller a token stands for, or InvalidSession with the reason (invalid, expired, idle too long,
        signed out, account disabled). Blocking (one database read): async callers run it via asyncio.to_thread."""
        session_id = self.tokens.verify(token)
        return live_session_actor(self.store, session_id, self.tokens.idle_s, touch)

    def join_ticket_for(self, token: str, room_id: str) -> str:
        return self.tokens.join_ticket(self.tokens.verify(token), room_id)

    def csrf_token_for(self, token: str) -> str:
        return self.tokens.csrf_token(self.tokens.verify(token))

    def sign_out(self, token: str) -> bool:
        """Revoke the token's session; False when it named no live session (a second sign-out, or garbage)."""
        try:
            session_id = self.tokens.verify(token)
        except InvalidSession:
            return False
        revoked = revoke_session(self.store, session_id)
        if revoked:
            for listener in self._sign_out_listeners:
                listener(session_hash(session_id))
        return revoked

    @staticmethod
    def bearer_from(request: Request) -> str | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise InvalidSession("use 'Authorization: Bearer <token>'")
        return value.strip()

    def token_from(self, request: Request) -> str | None:
        """The bearer token, else the session cookie; a write by cookie must carry the session's CSRF token
        (Forbidden otherwise, before anything is read or written)."""
        bearer = self.bearer_from(request)
        if bearer is not None:
            return bearer
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is None or request.method in _SAFE_METHODS:
            return cookie
        session_id = self.tokens.verify(cookie)
        if not self.tokens.csrf_matches(session_id, request.headers.get(CSRF_HEADER)):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header: reload the page and try again")
        return cookie

    def actor(self, request: Request) -> Actor:
        """Blocking (one database read): call it from a sync dependency, which FastAPI runs in its threadpool."""
        token = self.token_from(request)
        if token is None:
            raise InvalidSession("not logged in: sign in, or send 'Authorization: Bearer <token>'")
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
