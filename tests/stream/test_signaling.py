"""Bad signaling input gets a clear error on the socket, and the server keeps serving."""

from __future__ import annotations

import json

import pytest
import websockets

from scopecast.app import create_app
from scopecast.settings import Settings
from stream.signaling import SignalingError, parse_client_message
from stream.testing import client
from stream.testing.framestamp import StampedVideoTrack
from tests.helpers.fakes import BoxModel, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.stream_access import CLINICIAN_HEADERS, CLINICIAN_TOKEN, fixed_token_access


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        ("x" * (64 * 1024 + 1), "message_too_large", "65537 bytes"),
        ("{not json", "malformed_json", "not valid JSON"),
        ("[1, 2]", "malformed_message", "JSON object"),
        ('{"type": "dance"}', "unknown_type", "'dance'"),
        ('{"sdp": "v=0"}', "unknown_type", "None"),
        ('{"type": "watch", "sdp": "v=0 ........"}', "invalid_message", "stream_id"),
        ('{"type": "watch", "stream_id": "../etc", "sdp": "v=0 ........"}', "invalid_message", "stream_id"),
        ('{"type": "publish", "sdp": "v=0 ........", "extra": 1}', "invalid_message", "extra"),
    ],
)
def test_parse_rejects_bad_messages_with_reasons(raw, code, words):
    with pytest.raises(SignalingError) as info:
        parse_client_message(raw)
    assert info.value.code == code
    assert words in info.value.message


def test_parse_accepts_a_watch_request():
    msg = parse_client_message(json.dumps({"type": "watch", "stream_id": "sample", "sdp": "v=0\r\nm=video 9"}))
    assert msg.stream_id == "sample"


async def _exchange(addr: str, payload: str, token: str | None = CLINICIAN_TOKEN) -> dict:
    async with websockets.connect(f"ws://{addr}/ws", max_size=1 << 20) as ws:
        if token is not None:
            await client.sign_in(ws, token)
        await ws.send(payload)
        return json.loads(await ws.recv())


@pytest.fixture
def app():
    return create_app(
        Settings(serve_sample=False, model="box", max_sessions=3),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )


async def test_errors_on_the_socket_then_a_good_session_still_works(app):
    fake_offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    cases = [
        ("x" * 70_000, "message_too_large"),
        ("{oops", "malformed_json"),
        (json.dumps({"type": "teleport"}), "unknown_type"),
        (json.dumps({"type": "publish", "sdp": "hello, not sdp at all"}), "invalid_sdp"),
        (json.dumps({"type": "publish", "sdp": "v=0\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\n"}), "invalid_sdp"),
        (json.dumps({"type": "publish", "sdp": fake_offer}), "invalid_sdp"),
        (json.dumps({"type": "watch", "stream_id": "nope", "sdp": fake_offer}), "unknown_stream"),
    ]
    async with running_server(app) as addr:
        for payload, code in cases:
            reply = await _exchange(addr, payload)
            assert reply["type"] == "error" and reply["code"] == code, (code, reply)
            assert reply["message"]
        # The server is unharmed: a real camera session negotiates and streams.
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(320, 240, 10), token=CLINICIAN_TOKEN)
        frame = await session.track.recv()
        assert (frame.width, frame.height) == (320, 240)
        await session.close()
        metrics = await _http_get(addr, "/metrics")
        assert 'scopecast_signaling_errors_total{code="invalid_sdp"} 3.0' in metrics


async def test_unknown_stream_error_lists_live_streams(app):
    async with running_server(app) as addr:
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(320, 240, 10), token=CLINICIAN_TOKEN)
        with pytest.raises(client.ClientError) as info:
            await client.watch(f"ws://{addr}/ws", "cam-does-not-exist", token=CLINICIAN_TOKEN)
        assert info.value.code == "unknown_stream"
        assert session.stream_id in str(info.value)
        await session.close()


async def test_too_many_sessions_is_refused_clearly(app):
    async with running_server(app) as addr:
        open_sockets = [await websockets.connect(f"ws://{addr}/ws") for _ in range(3)]
        async with websockets.connect(f"ws://{addr}/ws") as extra:
            reply = json.loads(await extra.recv())
        assert reply == {
            "type": "error",
            "code": "too_many_sessions",
            "message": "too many sessions: the limit is 3",
            "closing": True,
        }
        await open_sockets[0].close()
        for _ in range(50):  # the freed slot becomes usable
            if app.state.hub.session_count < 3:
                break
            await __import__("asyncio").sleep(0.05)
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(320, 240, 10), token=CLINICIAN_TOKEN)
        await session.close()
        for ws in open_sockets[1:]:
            await ws.close()


async def _http_get(addr: str, path: str) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://{addr}", headers=CLINICIAN_HEADERS) as http:
        response = await http.get(path)
        response.raise_for_status()
        return response.text
