"""Questions on the data channel and over REST, answered while the video keeps flowing."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from scopecast.app import create_app
from scopecast.settings import Settings
from stream.dialogue import parse_channel_message
from stream.signaling import SignalingError
from stream.testing import client
from stream.testing.framestamp import StampedVideoTrack
from tests.helpers.fakes import BoxModel, ScriptedVlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.stream_access import CLINICIAN_HEADERS, CLINICIAN_TOKEN, fixed_token_access

W, H, FPS = 320, 240, 15


def _app(vlm):
    return create_app(
        Settings(serve_sample=False, model="box"),
        registry_with(box=BoxModel()),
        vlm=vlm,
        stream_access=fixed_token_access(),
    )


async def _publish_with_findings(addr: str) -> client.ClientSession:
    session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(W, H, FPS), token=CLINICIAN_TOKEN)
    asyncio.ensure_future(_drain(session))
    await session.next_event("findings")
    return session


async def _drain(session: client.ClientSession) -> None:
    try:
        while True:
            await session.track.recv()
    except Exception:
        return


async def test_answer_streams_on_the_data_channel_about_the_frame_and_its_findings():
    vlm = ScriptedVlm()
    async with running_server(_app(vlm)) as addr:
        session = await _publish_with_findings(addr)
        session.send({"type": "ask", "request_id": "q1", "question": "what do you see?"})
        deltas = []
        while True:
            event = await session.next_event("answer", request_id="q1")
            if event["done"]:
                break
            deltas.append(event["delta"])
        session.send({"type": "ask", "request_id": "q2", "question": "and now?"})
        await session.next_event("answer", request_id="q2", done=True)
        await session.close()
    assert len(deltas) >= 4, "the answer must arrive in pieces"
    assert event["text"] == "".join(deltas) == "I see 1 object(s): thing."
    assert event["model"] == {"name": "scripted", "version": "test", "backend": "grounded"}
    first = vlm.requests[0]
    assert first.image is not None and first.image.shape == (H, W, 3), "the frame itself goes to the VLM"
    assert first.findings.objects[0].label == "thing"
    assert [t.question for t in vlm.requests[1].history] == ["what do you see?"], "history is kept per session"


async def test_cancel_busy_and_bad_questions_get_clear_errors_while_video_flows():
    vlm = ScriptedVlm(delay_s=0.1, words=60)
    async with running_server(_app(vlm)) as addr:
        session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(W, H, FPS), token=CLINICIAN_TOKEN)
        await session.next_event("findings")
        session.send({"type": "ask", "request_id": "long", "question": "describe this frame"})
        await session.next_event("answer", request_id="long")
        session.send({"type": "ask", "request_id": "second", "question": "again"})
        busy = await session.next_event("error", request_id="second")
        frames_during_answer = 0
        start = time.monotonic()
        while time.monotonic() - start < 1.0:
            await asyncio.wait_for(session.track.recv(), 5)
            frames_during_answer += 1
        session.send({"type": "cancel", "request_id": "long"})
        cancelled = await session.next_event("error", request_id="long")
        session.send({"type": "ask", "request_id": "empty", "question": "   "})
        empty = await session.next_event("error", request_id="empty")
        session.send({"type": "ask", "request_id": "long2", "question": "x" * 2001})
        too_long = await session.next_event("error", request_id="long2")
        session.send({"type": "ask", "request_id": "old", "question": "and this one?", "frame_seq": 1})
        old = await session.next_event("error", request_id="old")
        session.send({"type": "teleport"})
        unknown = await session.next_event("error", code="unknown_type")
        await session.close()
    assert busy["code"] == "busy" and "still streaming" in busy["message"]
    assert frames_during_answer >= 0.7 * FPS, f"video slowed to {frames_during_answer} fps while answering"
    assert cancelled["code"] == "cancelled" and vlm.stopped_early == 1
    assert empty["code"] == "invalid_question" and "empty" in empty["message"]
    assert too_long["code"] == "invalid_question" and "2001" in too_long["message"]
    assert old["code"] == "unknown_frame" and "not held" in old["message"]
    assert "'teleport'" in unknown["message"]


async def test_rest_ask_and_its_errors():
    async with running_server(_app(ScriptedVlm())) as addr:
        session = await _publish_with_findings(addr)
        async with httpx.AsyncClient(base_url=f"http://{addr}", headers=CLINICIAN_HEADERS, timeout=10) as http:
            ok = await http.post(f"/api/streams/{session.stream_id}/ask", json={"question": "what is there?"})
            missing = await http.post("/api/streams/nope/ask", json={"question": "hi"})
            empty = await http.post(f"/api/streams/{session.stream_id}/ask", json={"question": ""})
            extra = await http.post(f"/api/streams/{session.stream_id}/ask", json={"question": "a", "sql": 1})
        await session.close()
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["answer"] == "I see 1 object(s): thing." and body["frame_seq"] >= 1
    assert missing.status_code == 404 and "unknown stream 'nope'" in missing.json()["detail"]
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    assert extra.status_code == 422


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ('{"type": "ask", "request_id": "a b", "question": "q"}', "invalid_message"),
        ('{"type": "ask", "request_id": "r"}', "invalid_message"),
        ("not json", "malformed_json"),
        ('{"type": "ask", "request_id": "r", "question": "' + "x" * 20000 + '"}', "message_too_large"),
    ],
)
def test_channel_messages_are_validated(raw, code):
    with pytest.raises(SignalingError) as info:
        parse_channel_message(raw)
    assert info.value.code == code


async def test_real_grounded_backend_answers_from_live_findings():
    from tests.helpers.fakes import keyword_vlm

    async with running_server(_app(keyword_vlm())) as addr:
        session = await _publish_with_findings(addr)
        session.send({"type": "ask", "request_id": "where", "question": "where is the thing?"})
        where = await session.next_event("answer", request_id="where", done=True)
        session.send({"type": "ask", "request_id": "dx", "question": "is this cancer? what treatment?"})
        declined = await session.next_event("answer", request_id="dx", done=True)
        await session.close()
    assert "centre" in where["text"].lower() or "center" in where["text"].lower(), where["text"]
    assert where["model"]["backend"] == "grounded"
    assert "can't" in declined["text"].lower() or "cannot" in declined["text"].lower(), declined["text"]
