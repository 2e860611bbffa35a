"""Janus's admin API over its WebSocket: the stored tokens that let a client use Janus at all (token_auth), and
what a handle's plugin reports (how many subscribers a publisher has).

The admin API can add tokens for anyone: it listens on loopback (or a private interface) only and is never exposed.
"""

from __future__ import annotations

from stream.janus.client import ADMIN_PROTOCOL, JanusConnection, JsonObject

VIDEOROOM = "janus.plugin.videoroom"


class JanusAdmin:
    """One short connection per call: calls are rare (a token per viewer), and a restarted Janus needs no
    reconnection logic here."""

    def __init__(self, url: str, secret: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self._secret = secret
        self._timeout_s = timeout_s

    async def add_token(self, token: str, plugins: tuple[str, ...] = (VIDEOROOM,)) -> None:
        await self._call("adding a token", {"janus": "add_token", "token": token, "plugins": list(plugins)})

    async def remove_token(self, token: str) -> None:
        await self._call("removing a token", {"janus": "remove_token", "token": token})

    async def list_tokens(self) -> list[str]:
        reply = await self._call("listing tokens", {"janus": "list_tokens"})
        return [str(t.get("token")) for t in reply.get("data", {}).get("tokens", [])]

    async def handle_info(self, session_id: int, handle_id: int) -> JsonObject:
        """What Janus knows of one plugin handle (`info`; its `plugin_specific` is the plugin's own report)."""
        reply = await self._call(
            "reading a handle's state", {"janus": "handle_info", "session_id": session_id, "handle_id": handle_id}
        )
        info = reply.get("info")
        return info if isinstance(info, dict) else {}

    async def _call(self, what: str, payload: JsonObject) -> JsonObject:
        connection = JanusConnection(
            self.url, protocol=ADMIN_PROTOCOL, admin_secret=self._secret, timeout_s=self._timeout_s
        )
        await connection.open()
        try:
            return await connection.request(what, payload)
        finally:
            await connection.close()
