"""What can go wrong talking to Janus, each error naming the problem in words an operator can act on."""

from __future__ import annotations

# Janus core error codes (janus/apierror.h) and the VideoRoom plugin's (plugins/janus_videoroom.c).
UNAUTHORIZED = 403
SESSION_NOT_FOUND = 458
HANDLE_NOT_FOUND = 459
VIDEOROOM_NO_SUCH_ROOM = 426
VIDEOROOM_ROOM_EXISTS = 427
VIDEOROOM_NO_SUCH_FEED = 428


class JanusError(Exception):
    """Any failure from Janus; `str()` is the message for people."""


class JanusUnreachable(JanusError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Janus at {url} unreachable: {reason}")
        self.url = url


class JanusConnectionLost(JanusError):
    def __init__(self, url: str) -> None:
        super().__init__(f"Janus at {url} closed the connection (restarting or stopped)")
        self.url = url


class JanusTokenRefused(JanusError):
    def __init__(self) -> None:
        super().__init__("Janus token expired or unknown: ask scopecast for a new one")


class RoomGone(JanusError):
    def __init__(self, room: int) -> None:
        super().__init__(f"Janus room {room} no longer exists")
        self.room = room


class JanusRequestFailed(JanusError):
    def __init__(self, what: str, code: int, reason: str) -> None:
        super().__init__(f"Janus refused {what}: {reason} (code {code})")
        self.code = code
        self.reason = reason


def error_for(what: str, code: int, reason: str, room: int | None = None) -> JanusError:
    if code == UNAUTHORIZED:
        return JanusTokenRefused()
    if code == VIDEOROOM_NO_SUCH_ROOM and room is not None:
        return RoomGone(room)
    return JanusRequestFailed(what, code, reason)
