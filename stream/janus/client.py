"""An async client for Janus's WebSocket API: transactions, a session kept alive, plugin handles and their events.

One `JanusConnection` is one WebSocket. Requests carry a transaction id and wait for their final reply ("success",
"error", or for plugin messages the "event" after the "ack"); messages without a waiting transaction are events for
a handle (webrtcup, hangup, plugin events such as a destroyed room) and go to that handle's callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from stream.janus.errors import JanusConnectionLost, JanusError, JanusUnreachable, error_for

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
API_PROTOCOL = "janus-protocol"
ADMIN_PROTOCOL = "janus-admin-protocol"


@dataclass(frozen=True)
class PluginReply:
    """A plugin's answer: its data (e.g. {"videoroom": "joined", ...}) and an SDP when it sent one."""

    data: JsonObject
    jsep: JsonObject | None = None


@dataclass(frozen=True)
class HandleEvent:
    """Something Janus said about a handle on its own: `kind` is the Janus message type (event, webrtcup, media,
    hangup, detached, slowlink); `plugin` carries a plugin event's data."""

    kind: str
    plugin: JsonObject = field(default_factory=dict)
    jsep: JsonObject | None = None
    reason: str = ""


HandleListener = Callable[[HandleEvent], None]


class JanusConnection:
    """One WebSocket to Janus (the API, or with `protocol=ADMIN_PROTOCOL` the admin API)."""

    def __init__(
        self,
        url: str,
        *,
        protocol: str = API_PROTOCOL,
        token: str | None = None,
        admin_secret: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self._protocol = protocol
        self._token = token
        self._admin_secret = admin_secret
        self._timeout_s = timeout_s
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[str, tuple[asyncio.Future[JsonObject], bool]] = {}
        self._listeners: dict[int, HandleListener] = {}
        self.closed = asyncio.Event()

    async def open(self) -> None:
        try:
            self._ws = await asyncio.wait_for(
                connect(self.url, subprotocols=[self._protocol], open_timeout=None, max_size=4 << 20),  # type: ignore[list-item]
                self._timeout_s,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise JanusUnreachable(
                self.url, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            ) from None
        self._reader = asyncio.create_task(self._read(), name=f"janus-reader:{self.url}")

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail_waiting()

    def listen(self, handle_id: int, listener: HandleListener) -> None:
        self._listeners[handle_id] = listener

    def forget(self, handle_id: int) -> None:
        self._listeners.pop(handle_id, None)

    async def request(self, what: str, payload: JsonObject, *, ack_is_final: bool = False) -> JsonObject:
        """Send `payload` (a Janus request) and return its final reply; raises the JanusError that names the
        problem. `what` says what is asked, for the error message."""
        if self._ws is None or self.closed.is_set():
            raise JanusConnectionLost(self.url)
        transaction = secrets.token_hex(8)
        message = {**payload, "transaction": transaction}
        if self._token is not None:
            message["token"] = self._token
        if self._admin_secret is not None:
            message["admin_secret"] = self._admin_secret
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = (future, ack_is_final)
        try:
            await self._ws.send(json.dumps(message))
            reply = await asyncio.wait_for(future, self._timeout_s)
        except ConnectionClosed:
            raise JanusConnectionLost(self.url) from None
        except TimeoutError:
            raise JanusError(f"Janus at {self.url} did not answer {what} within {self._timeout_s:g} s") from None
        finally:
            self._waiting.pop(transaction, None)
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise error_for(what, int(error.get("code", 0)), str(error.get("reason", "unknown error")))
        return reply

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    log.warning("janus sent a message that is not JSON", extra={"url": self.url})
                    continue
                if isinstance(message, dict):
                    self._dispatch(message)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self._fail_waiting()
            for listener in list(self._listeners.values()):
                listener(HandleEvent("closed", reason=f"Janus at {self.url} closed the connection"))

    def _dispatch(self, message: JsonObject) -> None:
        kind = str(message.get("janus", ""))
        waiting = self._waiting.get(str(message.get("transaction", "")))
        if waiting is not None:
            future, ack_is_final = waiting
            if (kind != "ack" or ack_is_final) and not future.done():
                future.set_result(message)
                return
            if kind == "ack":
                return
        sender = message.get("sender")
        listener = self._listeners.get(sender) if isinstance(sender, int) else None
        if listener is None:
            return
        plugin = message.get("plugindata", {}).get("data", {}) if kind == "event" else {}
        listener(HandleEvent(kind, plugin, message.get("jsep"), str(message.get("reason", ""))))

    def _fail_waiting(self) -> None:
        for future, _ack in self._waiting.values():
            if not future.done():
                future.set_exception(JanusConnectionLost(self.url))


class JanusSession:
    """A Janus session on a connection, kept alive while open; `attach` gives plugin handles."""

    def __init__(self, connection: JanusConnection, session_id: int, keepalive_s: float) -> None:
        self.connection = connection
        self.session_id = session_id
        self._keepalive = asyncio.create_task(self._keep_alive(keepalive_s), name=f"janus-keepalive:{session_id}")

    @classmethod
    async def create(cls, connection: JanusConnection, keepalive_s: float = 25.0) -> JanusSession:
        reply = await connection.request("a new session", {"janus": "create"})
        return cls(connection, int(reply["data"]["id"]), keepalive_s)

    async def attach(self, plugin: str, listener: HandleListener | None = None) -> JanusHandle:
        reply = await self.connection.request(
            f"attaching {plugin}", {"janus": "attach", "session_id": self.session_id, "plugin": plugin}
        )
        handle = JanusHandle(self, int(reply["data"]["id"]))
        if listener is not None:
            self.connection.listen(handle.handle_id, listener)
        return handle

    async def _keep_alive(self, every_s: float) -> None:
        # Janus drops a session that says nothing for session_timeout (60 s by default).
        while not self.connection.closed.is_set():
            await asyncio.sleep(every_s)
            try:
                await self.connection.request(
                    "a keepalive", {"janus": "keepalive", "session_id": self.session_id}, ack_is_final=True
                )
            except JanusError as exc:
                log.warning("janus keepalive failed", extra={"error": str(exc)})
                return

    async def destroy(self) -> None:
        self._keepalive.cancel()
        with contextlib.suppress(JanusError):
            await self.connection.request("closing the session", {"janus": "destroy", "session_id": self.session_id})


class JanusHandle:
    """A handle on one plugin (here the VideoRoom)."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.handle_id = handle_id

    async def message(
        self, what: str, body: JsonObject, jsep: JsonObject | None = None, room: int | None = None
    ) -> PluginReply:
        """A plugin request; a plugin-level error (e.g. no such room) is raised like a Janus one."""
        payload: JsonObject = {
            "janus": "message",
            "session_id": self.session.session_id,
            "handle_id": self.handle_id,
            "body": body,
        }
        if jsep is not None:
            payload["jsep"] = jsep
        reply = await self.session.connection.request(what, payload)
        data = reply.get("plugindata", {}).get("data", {})
        if "error_code" in data:
            raise error_for(what, int(data["error_code"]), str(data.get("error", "")), room)
        return PluginReply(data, reply.get("jsep"))

    async def trickle_done(self) -> None:
        await self.session.connection.request(
            "the end of candidates",
            {
                "janus": "trickle",
                "session_id": self.session.session_id,
                "handle_id": self.handle_id,
                "candidate": {"completed": True},
            },
            ack_is_final=True,
        )

    async def detach(self) -> None:
        self.session.connection.forget(self.handle_id)
        with contextlib.suppress(JanusError):
            await self.session.connection.request(
                "detaching", {"janus": "detach", "session_id": self.session.session_id, "handle_id": self.handle_id}
            )


async def open_session(url: str, token: str | None = None, keepalive_s: float = 25.0) -> JanusSession:
    """Connect and create a session; the caller closes `session.connection` when done."""
    connection = JanusConnection(url, token=token)
    await connection.open()
    try:
        return await JanusSession.create(connection, keepalive_s)
    except BaseException:
        await connection.close()
        raise
