"""A Python WebRTC client for scopecast servers: publish a track, watch a stream, or join a consult room.

Used by the stream benchmark and the integration tests; also handy for
scripting a camera from a machine without a browser.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from aiortc import RTCDataChannel, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver

JsonObject = dict[str, Any]  # one decoded JSON message: its values are whatever the server sent


class ClientError(RuntimeError):
    """The server refused a request; `code` is the server's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class ClientSession:
    pc: RTCPeerConnection
    socket: websockets.ClientConnection
    stream_id: str
    incoming: MediaStreamTrack | None  # the annotated video coming back (None: published with receive_video=False)
    channel: RTCDataChannel
    events: asyncio.Queue[JsonObject] = field(default_factory=lambda: asyncio.Queue(maxsize=10_000))
    audio: MediaStreamTrack | None = None  # sound coming back (consult rooms, when a microphone was sent)

    @property
    def track(self) -> MediaStreamTrack:
        if self.incoming is None:
            raise RuntimeError("this session was published with receive_video=False: no video comes back on it")
        return self.incoming

    def send(self, message: JsonObject) -> None:
        """Send a request (ask, cancel, ping) on the data channel."""
        self.channel.send(json.dumps(message))

    async def next_event(self, kind: str, timeout: float = 10.0, **match: object) -> JsonObject:
        """Wait for the next event of `kind` whose fields equal `match`; other events are dropped."""

        async def wait() -> JsonObject:
            while True:
                event = await self.events.get()
                if event.get("type") == kind and all(event.get(k) == v for k, v in match.items()):
                    return event

        return await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        await self.pc.close()
        await self.socket.close()


# Called with the video receiver before it starts (e.g. stream.testing.janus_viewer.count_without_decoding).
ReceiverHook = Callable[[RTCRtpReceiver], None]


async def publish(
    url: str,
    track: MediaStreamTrack,
    *,
    token: str,
    codec: str | None = None,
    label: str | None = None,
    on_receiver: ReceiverHook | None = None,
    receive_video: bool = True,
) -> ClientSession:
    """Send `track` to the server at `url` (ws://host:port/ws) and receive the annotated copy. `token`: a session
    token of a user who may publish (from POST /api/login). `receive_video=False`: offer send-only, so the server
    encodes nothing back to this camera (a benchmark's camera whose viewers are elsewhere)."""
    return await _negotiate(
        url,
        {"type": "publish", "label": label},
        send_track=track,
        codec=codec,
        token=token,
        on_receiver=on_receiver,
        receive_video=receive_video,
    )


async def watch(
    url: str, stream_id: str, *, token: str, codec: str | None = None, on_receiver: ReceiverHook | None = None
) -> ClientSession:
    """Receive stream `stream_id`; `token`: a session token of a user who may watch."""
    request = {"type": "watch", "stream_id": stream_id}
    return await _negotiate(url, request, send_track=None, codec=codec, token=token, on_receiver=on_receiver)


async def join(
    url: str,
    room_id: str,
    credential: str,
    track: MediaStreamTrack,
    *,
    microphone: MediaStreamTrack | None = None,
    codec: str | None = None,
) -> ClientSession:
    """Take a side of consult room `room_id`: send `track` (and `microphone`), receive the other side's video (a card
    until they join) and sound."""
    request: JsonObject = {"type": "join", "room_id": room_id, "credential": credential}
    return await _negotiate(url, request, send_track=track, codec=codec, microphone=microphone)


async def sign_in(socket: websockets.ClientConnection, token: str) -> JsonObject:
    """Authenticate an open signaling socket; returns the server's `authenticated` reply (role, rights)."""
    await socket.send(json.dumps({"type": "auth", "token": token}))
    reply: JsonObject = json.loads(await asyncio.wait_for(socket.recv(), 30))
    if reply.get("type") == "error":
        raise ClientError(reply["code"], reply["message"])
    return reply


async def _negotiate(
    url: str,
    request: JsonObject,
    *,
    send_track: MediaStreamTrack | None,
    codec: str | None,
    microphone: MediaStreamTrack | None = None,
    token: str | None = None,
    on_receiver: ReceiverHook | None = None,
    receive_video: bool = True,
) -> ClientSession:
    pc = RTCPeerConnection()
    events: asyncio.Queue[JsonObject] = asyncio.Queue(maxsize=10_000)
    channel = pc.createDataChannel("events")

    @channel.on("message")
    def on_message(message: str) -> None:
        if events.full():
            events.get_nowait()
        events.put_nowait(json.loads(message))

    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    sound: list[MediaStreamTrack] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video" and not received.done():
            if on_receiver is not None:  # fired inside setRemoteDescription, before the receiver starts
                on_receiver(next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track))
            received.set_result(track)
        elif track.kind == "audio":
            sound.append(track)

    if send_track is not None:
        transceiver = pc.addTransceiver(send_track, direction="sendrecv" if receive_video else "sendonly")
    else:
        transceiver = pc.addTransceiver("video", direction="recvonly")
    if microphone is not None:
        pc.addTransceiver(microphone, direction="sendrecv")
    if codec:
        wanted = f"video/{codec}".lower()
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == wanted]
        )
    await pc.setLocalDescription(await pc.createOffer())
    socket = await websockets.connect(url, max_size=1 << 20)
    try:
        if token is not None:
            await sign_in(socket, token)
        await socket.send(json.dumps({**request, "sdp": pc.localDescription.sdp}))
        reply = json.loads(await asyncio.wait_for(socket.recv(), 30))
        if reply.get("type") == "error":
            raise ClientError(reply["code"], reply["message"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        track = await asyncio.wait_for(received, 10) if receive_video else None
    except BaseException:
        await pc.close()
        await socket.close()
        raise
    if channel.readyState != "open":
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await asyncio.wait_for(opened.wait(), 10)
    return ClientSession(pc, socket, reply["stream_id"], track, channel, events, sound[0] if sound else None)
