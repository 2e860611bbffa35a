"""Fuzzing the signaling socket: every hostile message gets a JSON reply naming the problem, no session slot, stream or
track is left behind, and the server still serves a real camera afterwards. The figures go to docs/security.md."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
import websockets

from scopecast.app import create_app
from scopecast.settings import Settings
from stream.testing import client
from stream.testing.framestamp import StampedVideoTrack
from tests.helpers.fakes import BoxModel, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.signaling_fuzz import aiortc_offer, all_released, generate, targeted_breakages
from tests.helpers.stream_access import CLINICIAN_TOKEN, fixed_token_access

MESSAGES = 1200


def _app(**settings: object):
    return create_app(
        Settings(serve_sample=False, model="box", max_socket_errors=10_000, **settings),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )


async def _signed_in(addr: str) -> websockets.ClientConnection:
    ws = await websockets.connect(f"ws://{addr}/ws", max_size=1 << 22)
    await client.sign_in(ws, CLINICIAN_TOKEN)
    return ws


def _gauge_total(app, name: str) -> float:
    return sum(s.value for m in app.state.metrics.registry.collect() if m.name == name for s in m.samples)


@pytest.mark.timeout(600)
async def test_a_thousand_hostile_messages_each_get_an_error_and_leak_nothing():
    offer = await aiortc_offer()
    messages = generate(offer, MESSAGES)
    app = _app()
    replies: Counter[str] = Counter()
    answered_mutations = 0
    sockets_used = 1
    async with running_server(app) as addr:
        ws = await _signed_in(addr)
        for message in messages:
            if ws.state is not websockets.State.OPEN:  # the server said `closing` on the last error
                await ws.close()
                ws = await _signed_in(addr)
                sockets_used += 1
            await ws.send(message.payload)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 20))  # always JSON, never a silent close
            assert reply["type"] in ("error", "answer"), (message.kind, reply)
            if reply["type"] == "answer":
                assert not message.must_fail, (message.kind, "got an answer")
                answered_mutations += 1
                await ws.close()  # that session is real: end it, the next message gets a fresh socket
                continue
            replies[reply["code"]] += 1
            if reply["closing"]:
                await ws.close()
            assert reply["message"] and "Traceback" not in reply["message"], reply
            assert "object has no attribute" not in reply["message"], reply  # no library text reaches clients
        await ws.close()
        await all_released(app)
        hub = app.state.hub
        leaked = (
            hub.session_count,
            len(hub.all_streams()),
            _gauge_total(app, "scopecast_sessions"),
            _gauge_total(app, "scopecast_signaling_sockets"),
        )
        # The server still serves: a real camera is published and annotated.
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(320, 240, 10), token=CLINICIAN_TOKEN)
        findings = await session.next_event("findings", timeout=20)
        await session.close()
    print(
        f"\nsignaling fuzz: {len(messages)} messages over {sockets_used} sockets; "
        f"{sum(replies.values())} errors {dict(replies.most_common())}; {answered_mutations} mutated offers answered; "
        f"leaked slots/streams/session gauge/socket gauge after: {leaked}"
    )
    assert leaked == (0, 0, 0, 0)
    assert findings["objects"]
    assert sum(replies.values()) + answered_mutations == len(messages)


@pytest.mark.parametrize(
    "name",
    [
        "empty mid",
        "no fingerprint",
        "port 0",
        "negative payload type",
        "payload type 300",
        "broken BUNDLE",
        "NUL byte",
        "no ice-pwd",
        "short ice-ufrag",
        "rtpmap for an absent payload",
        "fingerprint of wrong length",
        "duplicate mid",
        "no video",
        "garbage line",
    ],
)
async def test_each_malformed_offer_is_refused_with_a_reason(name):
    offer = await aiortc_offer()
    sdp, words = targeted_breakages(offer)[name]
    app = _app()
    async with running_server(app) as addr:
        ws = await _signed_in(addr)
        await ws.send(json.dumps({"type": "publish", "sdp": sdp}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.close()
        await all_released(app)
        assert reply["type"] == "error" and reply["code"] == "invalid_sdp", reply
        assert words in reply["message"], reply
        assert app.state.hub.session_count == 0 and not app.state.hub.all_streams()
