"""A session always ends cleanly: broken offers, idle sockets, failing clean-up steps and greedy clients never keep a
session slot, stream or track."""

from __future__ import annotations

import asyncio
import json

import websockets

from scopecast.app import create_app
from scopecast.settings import Settings
from stream.session import PeerSession
from stream.testing import client
from stream.testing.framestamp import StampedVideoTrack
from tests.helpers.fakes import BoxModel, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.signaling_fuzz import aiortc_offer, all_released
from tests.helpers.stream_access import CLINICIAN_TOKEN, fixed_token_access


def _app(**settings: object):
    return create_app(
        Settings(serve_sample=False, model="box", **settings),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )


async def test_empty_mid_offers_cannot_use_up_the_session_slots():
    app = _app(max_sessions=4, max_sessions_per_address=4)
    broken = (await aiortc_offer()).replace("a=mid:0", "a=mid:")
    async with running_server(app) as addr:
        for _ in range(16):  # four times the slots: each must be given back
            async with websockets.connect(f"ws://{addr}/ws") as ws:
                await client.sign_in(ws, CLINICIAN_TOKEN)
                await ws.send(json.dumps({"type": "publish", "sdp": broken}))
                reply = json.loads(await ws.recv())
                assert reply["code"] == "invalid_sdp" and "a=mid" in reply["message"]
        assert await all_released(app)
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(320, 240, 10), token=CLINICIAN_TOKEN)
        assert (await session.next_event("findings", timeout=20))["objects"]
        await session.close()
        assert await all_released(app)


async def test_an_idle_socket_is_closed_and_gives_its_slot_back():
    app = _app(offer_timeout_s=0.5, max_sessions=2)
    async with running_server(app) as addr:
        silent = await websockets.connect(f"ws://{addr}/ws")
        signed_in_only = await websockets.connect(f"ws://{addr}/ws")
        await client.sign_in(signed_in_only, CLINICIAN_TOKEN)  # signing in is not an offer: the clock keeps running
        for ws in (silent, signed_in_only):
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply == {
                "type": "error",
                "code": "offer_timeout",
                "message": "no valid offer within 0.5 s; open a new socket",
                "closing": True,
            }
            await asyncio.wait_for(ws.wait_closed(), 5)
        assert await all_released(app)
        # Both slots are free again: a real session still gets in, and is not cut off by the offer clock once answered.
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(320, 240, 10), token=CLINICIAN_TOKEN)
        await asyncio.sleep(1.0)
        assert (await session.next_event("findings", timeout=20))["objects"]
        assert app.state.hub.session_count == 1
        await session.close()


async def test_one_address_cannot_hold_every_slot():
    app = _app(max_sessions=10, max_sessions_per_address=2)
    async with running_server(app) as addr:
        held = [await websockets.connect(f"ws://{addr}/ws") for _ in range(2)]
        async with websockets.connect(f"ws://{addr}/ws") as third:
            reply = json.loads(await third.recv())
        assert reply["code"] == "too_many_sessions" and "from your address" in reply["message"] and reply["closing"]
        for ws in held:
            await ws.close()
        assert await all_released(app)


async def test_a_failing_clean_up_step_does_not_stop_the_others(monkeypatch):
    app = _app()

    def broken_unsubscribe(self) -> None:
        raise RuntimeError("simulated failure while unsubscribing")

    monkeypatch.setattr(PeerSession, "_stop_watching", broken_unsubscribe)
    async with running_server(app) as addr:
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(320, 240, 10), token=CLINICIAN_TOKEN)
        await session.next_event("findings", timeout=20)
        assert len(app.state.hub.all_streams()) == 1
        await session.close()
        assert await all_released(app)  # slot given back and the published stream removed despite the failure
