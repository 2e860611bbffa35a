"""Server-side sessions: signing in opens a row, every request checks it is live, signing out revokes it.

The token a client holds carries a random session id (signed, see session_tokens.py); the table keeps only its
SHA-256, the user, and when it was opened, expires and was revoked. Blocking database calls: run them in a thread.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from telehealth.errors import InvalidSession
from telehealth.records import Actor, Role, as_utc, utc_now
from telehealth.store.cases import CaseStore
from telehealth.store.tables import SessionRow, UserRow


@dataclass(frozen=True)
class NewSession:
    session_id: str  # the only time the plain id exists outside a token: it goes into the token, never the table
    expires_at: datetime


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(store: CaseStore, user_id: int, ttl_s: int) -> NewSession:
    session_id = secrets.token_urlsafe(32)
    now = utc_now()
    expires_at = now + timedelta(seconds=ttl_s)
    with store.db.session() as s:
        # Expired rows can never authenticate again: dropping them here keeps the table the size of live sessions.
        s.execute(delete(SessionRow).where(SessionRow.expires_at <= now))
        s.add(
            SessionRow(
                session_sha256=session_hash(session_id),
                user_id=user_id,
                created_at=now,
                expires_at=expires_at,
                revoked_at=None,
            )
        )
    return NewSession(session_id, expires_at)


# A request refreshes its session's last-seen time only when the stored one is this old, so reading a page does
# not write a row per request; the idle timeout is therefore exact to within this much.
_TOUCH_EVERY = timedelta(seconds=60)


def session_actor(s: Session, session_id: str, idle_s: int | None = None, touch: bool = True) -> Actor:
    """The live session's user, inside the caller's transaction (on SQLite a second one would wait on the first's
    write lock); InvalidSession with the reason otherwise. With `idle_s`, a session unused that long has ended
    (absolute expiry is the row's expires_at, whatever the activity); `touch` False checks without counting as
    activity (an open page's event stream must not keep an idle session alive)."""
    row = s.scalars(select(SessionRow).where(SessionRow.session_sha256 == session_hash(session_id))).first()
    if row is None:
        raise InvalidSession("session not found, please sign in again")
    if row.revoked_at is not None:
        raise InvalidSession("session ended: you signed out, please sign in again")
    now = utc_now()
    if as_utc(row.expires_at) <= now:
        raise InvalidSession("session expired, please log in again")
    last_seen = as_utc(row.last_seen_at or row.created_at)
    if idle_s is not None:
        if now - last_seen > timedelta(seconds=idle_s):
            minutes = max(1, round(idle_s / 60))
            raise InvalidSession(f"signed out after {minutes} minutes without activity, please sign in again")
        if touch and now - last_seen >= _TOUCH_EVERY:
            row.last_seen_at = now
    user = s.get(UserRow, row.user_id)
    if user is None or user.disabled:
        raise InvalidSession("account disabled or removed")
    return Actor(user.id, Role(user.role))


def live_session_actor(store: CaseStore, session_id: str, idle_s: int | None = None, touch: bool = True) -> Actor:
    """session_actor in a transaction of its own."""
    with store.db.session() as s:
        return session_actor(s, session_id, idle_s, touch)


def revoke_session(store: CaseStore, session_id: str) -> bool:
    """Revoke a live session; False when there was none (unknown, expired or revoked already)."""
    with store.db.session() as s:
        done = s.execute(
            update(SessionRow)
            .where(SessionRow.session_sha256 == session_hash(session_id), SessionRow.revoked_at.is_(None))
            .values(revoked_at=utc_now())
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult
