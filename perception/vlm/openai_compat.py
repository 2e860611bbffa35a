"""Backend for any OpenAI-compatible chat server (vLLM, SGLang, `transformers
serve`, llama.cpp server): streams ``POST {base_url}/chat/completions``.

SSE is parsed by hand with httpx (no SDK dependency): each ``data:`` line is
one JSON chunk whose ``choices[0].delta.content`` is the next text piece.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import cv2
import httpx
import numpy as np

from perception.vlm.base import AskRequest, ReportContext, VlmError, VlmInfo, VlmUnavailable, collect
from perception.vlm.prompts import build_messages, build_report_messages
from perception.vlm.report import ReportDraft, draft_from_llm_text

# Frames are downscaled before upload: VLM encoders work at ≤ ~1k px anyway and
# a 4K frame as base64 would make every question a multi-megabyte request.
MAX_IMAGE_SIDE = 1024
JPEG_QUALITY = 85


def jpeg_data_url(image: np.ndarray, max_side: int = MAX_IMAGE_SIDE) -> str:
    """RGB uint8 frame → ``data:image/jpeg;base64,...``."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise VlmError("could not encode the frame as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def to_openai_messages(messages: list[dict[str, Any]], image: np.ndarray | None) -> list[dict[str, Any]]:
    """Swap the ``{"type": "image"}`` placeholder for an ``image_url`` part; plain strings for text-only turns.

    Text-only messages are sent as plain strings because some servers
    (llama.cpp, older vLLM chat templates) reject content-part lists without images.
    """
    out = []
    for msg in messages:
        parts = msg["content"]
        if all(p["type"] == "text" for p in parts):
            out.append({"role": msg["role"], "content": "\n".join(p["text"] for p in parts)})
            continue
        content = []
        for p in parts:
            if p["type"] == "image":
                if image is not None:
                    content.append({"type": "image_url", "image_url": {"url": jpeg_data_url(image)}})
            else:
                content.append(p)
        out.append({"role": msg["role"], "content": content})
    return out


def _excerpt(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "…"


class OpenAICompatBackend:
    """`VlmBackend` talking to an OpenAI-compatible server.

    `base_url` includes the API prefix, e.g. ``http://127.0.0.1:8000/v1``.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_new_tokens: int = 256,
        report_max_new_tokens: int | None = None,
        connect_retries: int = 2,
        send_image: bool = True,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_new_tokens = max_new_tokens
        # Reports are longer than answers: at least 384 tokens unless set.
        self.report_max_new_tokens = report_max_new_tokens or max(max_new_tokens, 384)
        self.connect_retries = connect_retries
        self.timeout_s = timeout_s
        self.send_image = send_image  # off for text-only servers: findings still ground the answer
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # The read timeout bounds the wait for each chunk, not the whole answer,
        # so a long answer that keeps streaming is never cut off.
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        )
        self._info = VlmInfo(name=model, version=f"server:{base_url.rstrip('/')}", backend="openai")

    @property
    def info(self) -> VlmInfo:
        return self._info

    async def aclose(self) -> None:
        await self._client.aclose()

    async def answer(self, request: AskRequest) -> AsyncGenerator[str, None]:
        image = request.image if self.send_image else None
        messages = to_openai_messages(build_messages(request, with_image=image is not None), image)
        async for piece in self._stream(messages, self.max_new_tokens):
            yield piece

    async def draft_report(self, context: ReportContext) -> ReportDraft:
        image = context.image if self.send_image else None
        messages = to_openai_messages(build_report_messages(context, with_image=image is not None), image)
        text = await collect(self._stream(messages, self.report_max_new_tokens))
        return draft_from_llm_text(text, context, self._info)

    async def _stream(self, messages: list[dict[str, Any]], max_tokens: int) -> AsyncIterator[str]:
        payload = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        for attempt in range(self.connect_retries + 1):
            try:
                # `async with` closes the HTTP stream when the consumer stops
                # iterating or is cancelled, so the server can stop generating.
                async with self._client.stream("POST", self.url, json=payload) as resp:
                    if resp.status_code != 200:
                        body = (await resp.aread()).decode("utf-8", "replace")
                        raise VlmError(f"VLM server at {self.url} answered HTTP {resp.status_code}: {_excerpt(body)}")
                    async for piece in self._parse_sse(resp):
                        yield piece
                    return
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing was streamed yet (no connection), so retrying is safe:
                # it covers a server restarting or a momentary refusal.
                if attempt < self.connect_retries:
                    await asyncio.sleep(0.25 * (attempt + 1))
                    continue
                raise VlmUnavailable(f"cannot reach VLM server at {self.url}: {exc or type(exc).__name__}") from exc
            except httpx.TimeoutException as exc:
                raise VlmUnavailable(f"VLM server at {self.url} did not answer within {self.timeout_s:g} s") from exc
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                raise VlmUnavailable(
                    f"VLM server at {self.url} dropped the connection: {exc or type(exc).__name__}"
                ) from exc

    async def _parse_sse(self, resp: httpx.Response) -> AsyncIterator[str]:
        saw_data = False
        async for line in resp.aiter_lines():
            line = line.strip()
            if not line or line.startswith(":") or line.startswith(("event:", "id:", "retry:")):
                continue  # blank separators, SSE comments/keep-alives and metadata fields
            if not line.startswith("data:"):
                raise VlmError(
                    f"unparseable stream from VLM server at {self.url}: expected 'data:' lines, got {_excerpt(line, 80)!r}"
                )
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError:
                raise VlmError(
                    f"unparseable stream from VLM server at {self.url}: invalid JSON {_excerpt(data, 80)!r}"
                ) from None
            if not isinstance(chunk, dict):
                raise VlmError(
                    f"unparseable stream from VLM server at {self.url}: chunk is not an object: {_excerpt(data, 80)!r}"
                )
            if "error" in chunk:
                err = chunk["error"]
                msg = err.get("message", err) if isinstance(err, dict) else err
                raise VlmError(f"VLM server at {self.url} reported an error: {_excerpt(str(msg))}")
            saw_data = True
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece
        if not saw_data:
            raise VlmError(f"VLM server at {self.url} closed the stream without sending any data")
