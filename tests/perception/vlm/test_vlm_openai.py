"""OpenAI-compatible backend against a real `transformers serve` on loopback
(tiny random LLaVA, image sent as a data URL), plus raw fake servers for the
error paths a real server will not produce on demand."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from perception.vlm import AskRequest, ReportContext, VlmError, VlmUnavailable, collect
from perception.vlm.openai_compat import OpenAICompatBackend
from perception.vlm.testing import save_tiny_llava


def _serve_available() -> str | None:
    try:
        from transformers.utils.import_utils import is_serve_available
    except ImportError:
        return "this transformers has no `serve` command"
    if not is_serve_available():
        return "`transformers serve` needs its extras: pip install openai accelerate fastapi uvicorn"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """(base_url, model_path, process) of `transformers serve` running a tiny LLaVA."""
    if (why := _serve_available()) is not None:
        pytest.skip(why)
    model = str(save_tiny_llava(tmp_path_factory.mktemp("llava")))
    port = _free_port()
    cli = Path(sys.executable).with_name("transformers")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.Popen(
        [str(cli), "serve", model, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path_factory.mktemp("serve"),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("transformers serve did not become healthy in 120 s")
    yield f"http://127.0.0.1:{port}/v1", model, proc
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def frame() -> np.ndarray:
    img = np.zeros((120, 160, 3), np.uint8)
    img[20:60, 30:90] = (200, 40, 40)
    return img


async def test_streams_from_transformers_serve(served, wound_findings):
    url, model, _ = served
    backend = OpenAICompatBackend(url, model, max_new_tokens=12, report_max_new_tokens=16, timeout_s=60)
    try:
        pieces = [
            p async for p in backend.answer(AskRequest("where is the wound?", image=frame(), findings=wound_findings))
        ]
        assert len(pieces) >= 5 and "".join(pieces).strip()
        # Stopping early closes the stream cleanly and the server keeps serving.
        gen = backend.answer(AskRequest("describe this frame", image=frame()))
        assert await gen.__anext__()
        await gen.aclose()
        draft = await backend.draft_report(
            ReportContext(findings=(wound_findings,), evidence_frames=("f1",), image=frame())
        )
        assert draft.status == "ai_draft" and draft.requires_signature and draft.model_name == model
        assert draft.evidence_frames == ["f1"] and draft.backend == "openai"
    finally:
        await backend.aclose()


async def test_server_stopped_is_unavailable(served):
    url, model, proc = served
    proc.terminate()
    proc.wait(15)
    backend = OpenAICompatBackend(url, model, connect_retries=1, timeout_s=5)
    with pytest.raises(VlmUnavailable, match=r"cannot reach VLM server at http://127\.0\.0\.1:\d+/v1/chat/completions"):
        await collect(backend.answer(AskRequest("describe")))
    await backend.aclose()


async def _raw_server(body: bytes):
    """A loopback server that answers every request with `body` (a full HTTP response)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


def _http(status: str, content_type: str, payload: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(payload)}\r\nconnection: close\r\n\r\n"
    ).encode() + payload


@pytest.mark.parametrize(
    "response, error",
    [
        (
            _http("500 Internal Server Error", "application/json", b'{"detail":"CUDA out of memory"}'),
            r"HTTP 500: .*CUDA out of memory",
        ),
        (_http("404 Not Found", "text/plain", b"no such model"), r"HTTP 404: no such model"),
        (_http("200 OK", "text/event-stream", b"<html>oops</html>\n"), r"unparseable stream .*expected 'data:'"),
        (_http("200 OK", "text/event-stream", b"data: {not json\n\n"), r"unparseable stream .*invalid JSON"),
        (
            _http("200 OK", "text/event-stream", b'data: {"error": {"message": "model not loaded"}}\n\n'),
            r"reported an error: model not loaded",
        ),
        (_http("200 OK", "text/event-stream", b""), r"without sending any data"),
    ],
)
async def test_clear_errors(response, error):
    server, url = await _raw_server(response)
    backend = OpenAICompatBackend(url, "m", connect_retries=0, timeout_s=5)
    try:
        with pytest.raises(VlmError, match=error):
            await collect(backend.answer(AskRequest("describe")))
    finally:
        await backend.aclose()
        server.close()


async def test_parses_plain_sse_and_done():
    sse = b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n: keep-alive\n\ndata: {"choices":[{"delta":{"content":"Hel"}}]}\n\ndata: {"choices":[{"delta":{"content":"lo"}}]}\n\ndata: [DONE]\n\n'
    server, url = await _raw_server(_http("200 OK", "text/event-stream", sse))
    backend = OpenAICompatBackend(url, "m", connect_retries=0)
    try:
        assert [p async for p in backend.answer(AskRequest("hi"))] == ["Hel", "lo"]
    finally:
        await backend.aclose()
        server.close()
