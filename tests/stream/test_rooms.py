"""Consult rooms over loopback: two aiortc peers (clinician and patient) in one call through the server."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np
import pytest
import websockets
from aiortc.mediastreams import AudioStreamTrack

from scopecast.app import create_app
from scopecast.settings import Settings
from stream.events import RoomEvent, parse_server_event, server_event_schema
from stream.rooms import RoomGrant, RoomRefused
from stream.testing import client
from stream.testing.framestamp import StampedVideoTrack, moving_pattern, read_stamp, stamp_frame
from tests.helpers.fakes import BOX_FRACTION, BoxModel, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.stream_access import CLINICIAN_HEADERS, CLINICIAN_TOKEN, fixed_token_access

W, H, FPS = 640, 480, 15
ROOM = "room-test-0001"
KEYS = {"clinician-credential": "clinician", "patient-credential": "patient"}


async def fake_authorizer(room_id: str, credential: str) -> RoomGrant:
    if room_id != ROOM:
        raise RoomRefused("no such consult: check the link")
    side = KEYS.get(credential)
    if side is None:
        raise RoomRefused("invalid join key or session")
    return RoomGrant(room_id, side)  # type: ignore[arg-type]


def _app(**overrides: object):
    settings = Settings(serve_sample=False, model="box", consult_model="box", hang_timeout_s=1.0, **overrides)
    return create_app(
        settings,
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        room_authorizer=fake_authorizer,
        stream_access=fixed_token_access(),
    )


def _patient_pattern():
    base = moving_pattern(W, H)
    return lambda i: base(i)


def _clinician_pattern():
    # A different picture from the patient's, so each side can tell whose video it receives.
    return lambda i: np.full((H, W, 3), (60, 140, 200), np.uint8)


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone (aiortc's AudioStreamTrack gives silence with the right pacing; this fills it)."""

    async def recv(self):
        frame = await super().recv()
        t = (np.arange(frame.samples) + frame.pts) / frame.sample_rate
        tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        for plane in frame.planes:
            plane.update(tone.tobytes())
        return frame


async def _frames(track, seconds: float) -> list[np.ndarray]:
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.append((await asyncio.wait_for(track.recv(), 5)).to_ndarray(format="bgr24"))
    return out


def _room_events(session: client.ClientSession) -> list[RoomEvent]:
    found = []
    for item in list(session.events._queue):  # noqa: SLF001  (peek without consuming)
        if item.get("type") == "room":
            found.append(parse_server_event(json.dumps(item)))
    return found


def _is_card(image: np.ndarray) -> bool:
    """The waiting card: dark grey everywhere but a line of light text."""
    return float(np.median(image)) == pytest.approx(40, abs=3) and bool((image > 200).any())


def _box_drawn(image: np.ndarray) -> bool:
    index = read_stamp(image)
    if index is None:
        return False
    reference = moving_pattern(W, H)(index).copy()
    stamp_frame(reference, index)
    h, w = image.shape[:2]
    fx0, fy0, fx1, fy1 = BOX_FRACTION
    ys, xs = slice(int(h * fy0) + 12, int(h * fy1) - 12), slice(int(w * fx0) + 12, int(w * fx1) - 12)
    diff = np.abs(image.astype(np.int16) - reference.astype(np.int16)).mean(axis=2)
    return float(diff[ys, xs].mean()) > 3 * float(diff[100:140, 40:140].mean()) + 10


async def test_consult_call_ai_on_the_clinician_side_only():
    async with running_server(_app()) as addr:
        url = f"ws://{addr}/ws"
        patient = await client.join(
            url, ROOM, "patient-credential", StampedVideoTrack(W, H, FPS, _patient_pattern()), microphone=ToneTrack()
        )
        try:
            joined = await patient.next_event("room", event="joined")
            assert joined["side"] == "patient" and joined["peer_present"] is False
            alone = await _frames(patient.track, 1.0)
            assert alone and all(_is_card(f) for f in alone[-3:]), "a patient alone should see the waiting card"

            clinician = await client.join(
                url,
                ROOM,
                "clinician-credential",
                StampedVideoTrack(W, H, FPS, _clinician_pattern()),
                microphone=AudioStreamTrack(),
            )
            try:
                joined = await clinician.next_event("room", event="joined")
                assert joined["side"] == "clinician" and joined["peer_present"] is True
                await patient.next_event("room", event="peer_joined")

                seen_by_clinician, seen_by_patient = await asyncio.gather(
                    _frames(clinician.track, 3.0), _frames(patient.track, 3.0)
                )
                annotated = sum(_box_drawn(f) for f in seen_by_clinician[10:])
                assert annotated >= 0.5 * len(seen_by_clinician[10:]), (
                    f"overlay on {annotated}/{len(seen_by_clinician) - 10}"
                )
                # The patient sees the clinician's camera, plain: the flat colour, no card, no overlay.
                tail = seen_by_patient[-5:]
                assert all(np.abs(f.astype(int) - (60, 140, 200)).mean() < 12 for f in tail), (
                    "patient should see the clinician plainly"
                )

                findings = await clinician.next_event("findings")
                assert findings["objects"] and findings["stream_id"].startswith("room-")
                assert not any(e.get("type") in ("findings", "status") for e in list(patient.events._queue))  # noqa: SLF001

                # Sound: the patient's tone reaches the clinician.
                assert clinician.audio is not None
                loud = 0
                for _ in range(50):
                    frame = await asyncio.wait_for(clinician.audio.recv(), 5)
                    loud += int(np.abs(frame.to_ndarray()).max() > 1000)
                assert loud > 10, "the patient's microphone should be heard by the clinician"

                # Questions: the clinician may ask about the patient's frame; the patient may not ask at all.
                clinician.send({"type": "ask", "request_id": "q1", "question": "what do you see?"})
                answer = await clinician.next_event("answer", request_id="q1", done=True)
                assert answer["text"] and answer["frame_seq"] >= 1
                patient.send({"type": "ask", "request_id": "q2", "question": "what do you see?"})
                refused = await patient.next_event("error")
                assert refused["code"] == "not_allowed"

                # Room streams are private: not listed, not watchable, not askable through the public API.
                async with httpx.AsyncClient(base_url=f"http://{addr}", headers=CLINICIAN_HEADERS) as http:
                    assert (await http.get("/api/streams")).json() == []
                    ask = await http.post(f"/api/streams/{findings['stream_id']}/ask", json={"question": "what is it?"})
                    assert ask.status_code == 404
                with pytest.raises(client.ClientError) as refused_watch:
                    await client.watch(url, findings["stream_id"], token=CLINICIAN_TOKEN)
                assert refused_watch.value.code == "unknown_stream"
            finally:
                await clinician.close()
            left = await patient.next_event("room", event="peer_left")
            assert left["peer_present"] is False
        finally:
            await patient.close()


async def test_patient_reconnects_and_a_second_join_takes_the_seat_over():
    app = _app()
    async with running_server(app) as addr:
        url = f"ws://{addr}/ws"
        clinician = await client.join(
            url, ROOM, "clinician-credential", StampedVideoTrack(W, H, FPS, _clinician_pattern())
        )
        first = await client.join(url, ROOM, "patient-credential", StampedVideoTrack(W, H, FPS, _patient_pattern()))
        try:
            await clinician.next_event("room", event="peer_joined")
            # The patient's network drops: the clinician is told, and sees the waiting card, not a frozen frame.
            await first.close()
            await clinician.next_event("room", event="peer_left")
            await _frames(clinician.track, 0.6)
            assert _is_card((await _frames(clinician.track, 0.5))[-1])

            # The patient comes back (a reload, a new network): the call picks up with no renegotiation on the clinician side.
            second = await client.join(
                url, ROOM, "patient-credential", StampedVideoTrack(W, H, FPS, _patient_pattern())
            )
            await clinician.next_event("room", event="peer_joined")
            frames = await _frames(clinician.track, 2.0)
            assert sum((read_stamp(f) or 0) > 0 for f in frames[-10:]) >= 8, (
                "the clinician should see the patient again"
            )

            # Joining again while connected (another device) takes the seat over and ends the older connection.
            third = await client.join(url, ROOM, "patient-credential", StampedVideoTrack(W, H, FPS, _patient_pattern()))
            replaced = await second.next_event("room", event="replaced")
            assert replaced["side"] == "patient"
            for _ in range(100):
                if second.pc.connectionState in ("closed", "failed"):
                    break
                await asyncio.sleep(0.05)
            assert app.state.rooms.presence(ROOM) == {"clinician": True, "patient": True}
            assert sum(1 for e in app.state.hub.all_streams() if e.private) == 2, "the replaced stream should be gone"

            # The clinician ends the consult: both are told.
            await app.state.rooms.close_room(ROOM)
            assert (await third.next_event("room", event="ended"))["side"] == "patient"
            assert (await clinician.next_event("room", event="ended"))["side"] == "clinician"
            for _ in range(100):
                if not app.state.hub.all_streams():
                    break
                await asyncio.sleep(0.05)
            assert app.state.hub.all_streams() == [] and app.state.rooms.presence(ROOM) == {
                "clinician": False,
                "patient": False,
            }
            await second.close()
            await third.close()
        finally:
            await clinician.close()
            await first.close()


async def _send_raw(url: str, message: dict | str) -> dict:
    async with websockets.connect(url) as ws:
        await ws.send(message if isinstance(message, str) else json.dumps(message))
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_bad_joins_get_clear_errors():
    async with running_server(_app()) as addr:
        url = f"ws://{addr}/ws"
        with pytest.raises(client.ClientError) as wrong_key:
            await client.join(url, ROOM, "not-the-key", StampedVideoTrack(W, H, FPS, _patient_pattern()))
        assert wrong_key.value.code == "room_refused" and "invalid join key" in str(wrong_key.value)
        with pytest.raises(client.ClientError) as wrong_room:
            await client.join(
                url, "room-nobody-here", "patient-credential", StampedVideoTrack(W, H, FPS, _patient_pattern())
            )
        assert "no such consult" in str(wrong_room.value)

        bad_id = await _send_raw(
            url, {"type": "join", "room_id": "../x", "credential": "patient-credential", "sdp": "v=0 " * 5}
        )
        assert bad_id["code"] == "invalid_message" and "room_id" in bad_id["message"]
        no_video = await _send_raw(
            url,
            {
                "type": "join",
                "room_id": ROOM,
                "credential": "patient-credential",
                "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
            },
        )
        assert no_video["code"] == "invalid_sdp" and "no video" in no_video["message"]
    # The server keeps serving after all of that, and a server without an authorizer says rooms are off.
    settings = Settings(serve_sample=False, model="box")
    async with running_server(
        create_app(settings, registry_with(box=BoxModel()), vlm=keyword_vlm(), stream_access=fixed_token_access())
    ) as addr:
        with pytest.raises(client.ClientError) as off:
            await client.join(
                f"ws://{addr}/ws", ROOM, "patient-credential", StampedVideoTrack(W, H, FPS, _patient_pattern())
            )
        assert off.value.code == "rooms_disabled"


def test_room_event_schema_is_published():
    schema = json.dumps(server_event_schema())
    assert "RoomEvent" in schema and "peer_left" in schema
