"""The product's one login, as the streaming side needs it: telehealth's accounts and sessions decide who is calling,
and this module says what each role may do with streams."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from stream.access import AccessDenied, Principal, StreamAccess
from telehealth.errors import TelehealthError
from telehealth.records import Actor, Role
from telehealth.services import TelehealthServices
from telehealth.session_tokens import SESSION_COOKIE

# Theatre sources and published cameras are clinical video: patients never see them (their consult room has its own
# grant), everyone else signed in may watch and publish.
_STREAM_ROLES = frozenset({Role.surgeon, Role.gp, Role.admin})


def principal_of(actor: Actor, sign_in: str = "") -> Principal:
    clinical = actor.role in _STREAM_ROLES
    return Principal(
        user_id=actor.user_id, role=actor.role.value, may_watch=clinical, may_publish=clinical, sign_in=sign_in
    )


def telehealth_stream_access(telehealth: TelehealthServices, allowed_origins: Iterable[str] = ()) -> StreamAccess:
    async def authenticate(token: str) -> Principal:
        try:
            actor = await asyncio.to_thread(telehealth.auth.actor_for_token, token)  # one database read
        except TelehealthError as exc:
            raise AccessDenied("invalid_session", exc.reason) from None
        return principal_of(actor, telehealth.auth.sign_in_key_for(token))

    return StreamAccess(authenticate, SESSION_COOKIE, "/signin", frozenset(allowed_origins))
