"""Time-limited TURN credentials (the TURN REST API shared-secret scheme coturn's `use-auth-secret` implements).

The username is `<expiry unix time>:<who>` and the password the base64 HMAC-SHA1 of the username under the shared
secret, so coturn can check them without asking scopecast, and a leaked pair stops working at its expiry. Static
TURN passwords in a page would be an open relay for anyone who reads them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

# An RTCIceServer dict as aiortc's RTCIceServer(**server) and a browser's RTCPeerConnection take it: urls (one string
# or a list), and username and credential for TURN.
IceServer = dict[str, Any]


@dataclass(frozen=True)
class TurnRelay:
    urls: tuple[str, ...]  # turn:host:3478?transport=udp, turns:host:5349, ...
    secret: str
    ttl_s: int = 3600

    def credentials(self, who: str, now: float | None = None) -> IceServer:
        """An RTCIceServer dict for `who` (a name for coturn's logs), valid for `ttl_s`."""
        expiry = int((time.time() if now is None else now) + self.ttl_s)
        username = f"{expiry}:{who}"
        digest = hmac.new(self.secret.encode(), username.encode(), hashlib.sha1).digest()
        return {"urls": list(self.urls), "username": username, "credential": base64.b64encode(digest).decode()}
