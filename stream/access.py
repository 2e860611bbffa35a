"""Who may use the streaming side: signed-in principals, their rights, and which page origins may open a socket.

The streaming spine does not know about accounts. The composition root hands it a `StreamAccess` whose
`authenticate` turns a session token (bearer header, session cookie or the socket's `auth` message) into a
`Principal`, or refuses with `AccessDenied`. Consult rooms keep their own join grant (stream.rooms).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Principal:
    """A signed-in user as the streaming side sees them: who (for logs and audit) and what they may do."""

    user_id: int
    role: str
    may_watch: bool  # theatre sources and published cameras
    may_publish: bool  # send a camera as a new stream
    sign_in: str = ""  # names the sign-in (not a credential): what was handed out for it ends when it signs out


class AccessDenied(Exception):
    """Refused: `code` for programs (not_authenticated, invalid_session, forbidden, origin_not_allowed), `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Authenticate = Callable[[str], Awaitable[Principal]]


@dataclass(frozen=True)
class StreamAccess:
    """How the streaming routes authenticate. `allowed_origins` are extra page origins (scheme://host[:port]) that may
    open the signaling socket besides the server's own."""

    authenticate: Authenticate
    cookie_name: str
    sign_in_path: str = "/signin"
    allowed_origins: frozenset[str] = field(default_factory=frozenset)

    def origin_allowed(self, origin: str | None, host: str | None, scheme: str) -> bool:
        """A browser always sends Origin on a WebSocket; it must be this server or an allowed one. Programs send none:
        they cannot carry a victim's cookie, and still need a token."""
        if origin is None:
            return True
        normalized = normalize_origin(origin)
        if normalized is None:
            return False
        if normalized in self.allowed_origins:
            return True
        return host is not None and normalized in (
            normalize_origin(f"{s}://{host}") for s in _same_site_schemes(scheme)
        )

    def token_from(self, headers: Mapping[str, str], cookies: Mapping[str, str], *, cookie_ok: bool) -> str | None:
        """The bearer token, else (where `cookie_ok`) the session cookie. A malformed Authorization header is refused."""
        header = headers.get("authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise AccessDenied("invalid_session", "use 'Authorization: Bearer <token>'")
            return value.strip()
        return cookies.get(self.cookie_name) if cookie_ok else None


def normalize_origin(origin: str) -> str | None:
    """'HTTPS://Example.org:443' -> 'https://example.org'; None for anything that is not scheme://host[:port]."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def _same_site_schemes(scheme: str) -> tuple[str, ...]:
    # Behind a TLS-terminating proxy the socket arrives as ws:// while the page was https://.
    return ("http", "https") if scheme in ("ws", "http") else ("https",)
