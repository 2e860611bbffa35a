"""Slows password guessing: after too many failed sign-ins for one account, or from one address, refuse for a while.

Counts live in memory (one server process; a restart forgets them), in sliding windows. An account's limit stops
guessing one password; the address limit stops one client trying many accounts. A correct password does not get
through a block: otherwise a guesser would learn when they had found it.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from telehealth.errors import TelehealthError


class TooManyAttempts(TelehealthError):
    status_code = 429

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class ThrottleLimits:
    per_account: int = 5
    per_address: int = 20
    window_s: float = 15 * 60


class LoginThrottle:
    def __init__(self, limits: ThrottleLimits = ThrottleLimits(), clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()  # sign-ins run in FastAPI's worker threads

    def check(self, account: str, address: str | None) -> None:
        """Raise TooManyAttempts (429, with when to retry) if either key is over its limit now."""
        now = self._clock()
        with self._lock:
            for key, limit, what in self._keys(account, address):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = max(1, math.ceil(times[0] + self._limits.window_s - now))
                    minutes = max(1, math.ceil(wait / 60))
                    raise TooManyAttempts(f"too many failed sign-ins {what}: try again in {minutes} min", wait)

    def failed(self, account: str, address: str | None) -> None:
        now = self._clock()
        with self._lock:
            for key, _limit, _what in self._keys(account, address):
                self._recent(key, now).append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop(f"account:{account}", None)

    def _keys(self, account: str, address: str | None) -> list[tuple[str, int, str]]:
        keys = [(f"account:{account}", self._limits.per_account, "for this account")]
        if address:
            keys.append((f"address:{address}", self._limits.per_address, "from this address"))
        return keys

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        times = self._failures.setdefault(key, collections.deque())
        while times and times[0] <= now - self._limits.window_s:
            times.popleft()
        return times
