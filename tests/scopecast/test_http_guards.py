"""Every response carries the security headers; a request body that trickles in is cut off with a 408; a client cannot
pick its own address with X-Forwarded-For unless a trusted proxy is configured."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets
from fastapi import FastAPI, Request

from scopecast.app import create_app
from scopecast.http_guards import BodyDeadline, RequestBodyDeadline
from scopecast.settings import Settings
from tests.helpers.fakes import BoxModel, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.stream_access import CLINICIAN_TOKEN, fixed_token_access


def _app(**settings: object):
    return create_app(
        Settings(serve_sample=False, model="box", **settings),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )


async def test_every_page_and_answer_has_the_security_headers():
    async with running_server(_app()) as addr:
        async with httpx.AsyncClient(base_url=f"http://{addr}") as http:
            responses = [
                await http.get(path)
                for path in ("/", "/monitor", "/static/scopecast.js", "/api/streams", "/healthz", "/no-such-page")
            ]
            responses.append(await http.get("/monitor", cookies={"scopecast_session": CLINICIAN_TOKEN}))
            docs = await http.get("/docs")
    for response in responses:
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], response.url
        assert "script-src 'self';" in headers["content-security-policy"], response.url  # no inline scripts
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]  # FastAPI's docs page loads Swagger UI
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]


async def test_a_slow_request_body_is_cut_off_with_a_408():
    app = _app(body_idle_timeout_s=0.5)
    async with running_server(app) as addr:
        host, port = addr.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /api/streams/x/ask HTTP/1.1\r\nHost: " + addr.encode() + b"\r\n"
            b"Authorization: Bearer " + CLINICIAN_TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n" + b" " * 105_000
        )
        await writer.drain()
        started = asyncio.get_running_loop().time()
        status_line = await asyncio.wait_for(reader.readline(), 10)  # then nothing more is sent
        waited = asyncio.get_running_loop().time() - started
        writer.close()
        assert status_line.startswith(b"HTTP/1.1 408"), status_line
        assert waited < 5
        async with httpx.AsyncClient(base_url=f"http://{addr}") as http:  # the server goes on serving
            assert (await http.get("/healthz")).status_code == 200


async def _refusal_after(addr: str, sockets: int, spoofed: bool) -> dict:
    held = []
    for i in range(sockets):
        headers = {"X-Forwarded-For": f"203.0.113.{i + 1}"} if spoofed else {}
        held.append(await websockets.connect(f"ws://{addr}/ws", additional_headers=headers))
    try:
        headers = {"X-Forwarded-For": "198.51.100.77"} if spoofed else {}
        async with websockets.connect(f"ws://{addr}/ws", additional_headers=headers) as extra:
            try:  # a refused socket says so at once
                return json.loads(await asyncio.wait_for(extra.recv(), 1.0))
            except TimeoutError:
                await extra.send(json.dumps({"type": "auth", "token": CLINICIAN_TOKEN}))
                return json.loads(await extra.recv())
    finally:
        for ws in held:
            await ws.close()


async def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted():
    async with running_server(_app(max_sessions=10, max_sessions_per_address=2)) as addr:
        reply = await _refusal_after(addr, 2, spoofed=True)
    assert reply["code"] == "too_many_sessions" and "from your address" in reply["message"]
    # Configured to trust the local proxy, the same headers do count as the client's addresses.
    async with running_server(
        _app(max_sessions=10, max_sessions_per_address=2, forwarded_allow_ips="127.0.0.1")
    ) as addr:
        reply = await _refusal_after(addr, 2, spoofed=True)
    assert reply["type"] == "authenticated", reply


async def test_a_stalled_photo_upload_gets_a_408_and_frees_the_connection(tmp_path):
    from scopecast.app import build_telehealth
    from telehealth.accounts import add_user
    from telehealth.records import Role
    from tests.telehealth.telehealth_testutil import PASSWORD, fast_settings

    services = build_telehealth(fast_settings(tmp_path / "telehealth"))
    add_user(services.store, "pat@mail.test", PASSWORD, Role.patient.value)
    app = create_app(
        Settings(serve_sample=False, model="box", body_idle_timeout_s=0.5),
        registry_with(box=BoxModel()),
        vlm=keyword_vlm(),
        telehealth=services,
    )
    async with running_server(app) as addr:
        async with httpx.AsyncClient(base_url=f"http://{addr}") as http:
            token = (await http.post("/api/login", json={"email": "pat@mail.test", "password": PASSWORD})).json()[
                "token"
            ]
            case = (
                await http.post("/api/cases", json={"label": "heel"}, headers={"Authorization": f"Bearer {token}"})
            ).json()
        host, port = addr.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        boundary = b"scopecastboundary"
        writer.write(
            b"POST /api/cases/" + str(case["id"]).encode() + b"/photos HTTP/1.1\r\nHost: " + addr.encode() + b"\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\nContent-Length: 5000000\r\n\r\n"
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + b"\xff\xd8\xff" + b"\0" * 105_000
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.read(4096), 10)
        writer.close()
    assert head.startswith(b"HTTP/1.1 408"), head[:200]
    assert b"too slowly" in head


async def test_a_trickled_body_is_cut_off_but_a_steady_slow_one_is_not():
    inner = FastAPI()

    @inner.post("/echo")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    inner.add_middleware(RequestBodyDeadline, deadline=BodyDeadline(idle_s=2.0, min_bytes_per_s=2000, grace_s=0.5))

    async def send_slowly(addr: str, chunk: bytes, pause_s: float, chunks: int) -> bytes:
        host, port = addr.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(chunk) * chunks).encode() + b"\r\n\r\n"
        )
        try:
            for _ in range(chunks):
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(pause_s)
        except ConnectionError:
            pass  # the server answered and closed early
        head = await asyncio.wait_for(reader.read(200), 10)
        writer.close()
        return head

    async with running_server(inner) as addr:
        trickle = await send_slowly(addr, b"x" * 10, 0.1, 20)  # 100 bytes/s: under the floor once the grace ends
        steady = await send_slowly(addr, b"x" * 1000, 0.1, 10)  # 10 KB/s: slow, but a real upload
    assert trickle.startswith(b"HTTP/1.1 408"), trickle
    assert steady.startswith(b"HTTP/1.1 200") and b'"bytes":10000' in steady, steady
