"""The first-run setup link: with no account yet, whoever holds it may create the first (admin) account once.

Like Jupyter's token: `scopecast serve` prints the link on the console of the machine it runs on, so holding it shows
the person is at that console. Only a hash of the token is kept, in memory; a restart (or a newer link) voids it,
and it stops working for good once any account exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from telehealth.errors import Conflict, Forbidden

SETUP_PATH = "/setup"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class FirstRunSetup:
    """Holds the hash of the newest setup token. Thread-safe: FastAPI runs the setup route in worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token_sha256: str | None = None
        self._in_use = False

    def new_token(self) -> str:
        """A fresh token; the previous one stops working."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._token_sha256 = _digest(token)
        return token

    @contextmanager
    def claim(self, token: str) -> Iterator[None]:
        """Hold the token while the account is made: on success it is spent, on failure (a weak password, say) it
        works again. Forbidden for a wrong or no token; Conflict while another request holds it."""
        with self._lock:
            expected = self._token_sha256
            if expected is None or not hmac.compare_digest(_digest(token), expected):
                raise Forbidden("invalid setup link: use the newest link scopecast serve printed")
            if self._in_use:
                raise Conflict("setup is already in progress in another window")
            self._in_use = True
        try:
            yield
        except BaseException:
            with self._lock:
                self._in_use = False
            raise
        with self._lock:
            self._token_sha256 = None
            self._in_use = False
