"""A Janus VideoRoom subscriber in Python: the aiortc viewer of the Janus tests and of `scopecast bench viewers`.

With `decode=False` the viewer counts frames without decoding them: aiortc has no public way to receive RTP
without its decoder, so the transport's RTP handler is replaced by one that notes each frame's last packet and
drops it (the decoder thread idles). That lets one small machine host fifty viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from stream.janus.client import JanusSession, open_session
from stream.janus.publisher import VIDEOROOM


def count_without_decoding(receiver: RTCRtpReceiver, arrivals: list[float]) -> None:
    """Before the receiver starts (right after the track event), count its frames into `arrivals` instead of
    decoding them.

    Every RTP packet that reaches this peer's transport (after SRTP) is looked at for the RTP marker bit, set on the
    last packet of a video frame, and nothing more: aiortc's header parsing, jitter buffer, depacketiser, NACKs and
    bitrate estimator cost a Python viewer about as much again as the network stack, and fifty of them would
    measure this process instead of the server. The peer must carry this one video stream only (a Janus subscriber
    does); without NACKs a lost packet is not resent, which loopback does not need.
    """

    async def count_frame_ends(data: bytes, arrival_time_ms: int) -> None:
        if len(data) > 1 and data[1] & 0x80:
            arrivals.append(time.monotonic())

    receiver.transport._handle_rtp_data = count_frame_ends  # type: ignore[method-assign]


@dataclass
class JanusViewer:
    pc: RTCPeerConnection
    session: JanusSession
    arrivals: list[float]  # monotonic arrival time of each frame (decode=False)
    track: MediaStreamTrack | None = None  # the decoded video (decode=True)
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=10_000))
    channel: RTCDataChannel | None = None

    async def next_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                event = await self.events.get()
                if event.get("type") == kind:
                    return event

        return await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        await self.pc.close()
        await self.session.destroy()
        await self.session.connection.close()


async def watch_room(url: str, token: str | None, room: int, feed: int, *, decode: bool = True) -> JanusViewer:
    """Subscribe to `feed` in `room`; returns once the answer is sent (media follows)."""
    session = await open_session(url, token)
    try:
        handle = await session.attach(VIDEOROOM)
        reply = await handle.message(
            "subscribing",
            {"request": "join", "ptype": "subscriber", "room": room, "streams": [{"feed": feed}]},
            room=room,
        )
        if reply.jsep is None:
            raise RuntimeError(f"Janus sent no offer for feed {feed} in room {room}")
        pc = RTCPeerConnection()
        viewer = JanusViewer(pc, session, [])
        tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                if not decode:
                    for transceiver in pc.getTransceivers():
                        if transceiver.receiver.track is track:
                            count_without_decoding(transceiver.receiver, viewer.arrivals)
                tracks.put_nowait(track)

        def on_message(raw: str | bytes) -> None:
            with contextlib.suppress(ValueError, asyncio.QueueFull):
                message = json.loads(raw)
                if isinstance(message, dict):
                    viewer.events.put_nowait(message)

        @pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            viewer.channel = channel
            channel.on("message", on_message)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply.jsep["sdp"], type=reply.jsep["type"]))
        # Janus relays a publisher's data to a subscriber only once the subscriber has opened a channel of its own
        # (janus.js does the same with its default label).
        pc.createDataChannel("JanusDataChannel").on("message", on_message)
        await pc.setLocalDescription(await pc.createAnswer())
        await handle.message(
            "starting",
            {"request": "start", "room": room},
            {"type": "answer", "sdp": pc.localDescription.sdp},
            room=room,
        )
        viewer.track = await asyncio.wait_for(tracks.get(), 5)
        return viewer
    except BaseException:
        await session.connection.close()
        raise
