"""The README's run command, for real: `scopecast serve` as a process on embedded defaults."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_user_add_creates_an_account_and_refuses_a_duplicate(tmp_path, monkeypatch):
    env = {**os.environ, "SCOPECAST_TELEHEALTH_DATA_DIR": str(tmp_path), "NEW_PASSWORD": "correct horse battery staple"}
    cmd = [
        sys.executable,
        "-m",
        "scopecast",
        "user",
        "add",
        "--email",
        "gp@example.org",
        "--role",
        "gp",
        "--password-env",
        "NEW_PASSWORD",
    ]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and "created gp account" in first.stdout, first.stderr
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "gp@example.org" not in again.stdout
    assert "already" in again.stderr.lower() or "exists" in again.stderr.lower(), again.stderr
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0, "the generated secret must be owner-only"
    # --name gives the name signed reports show.
    named = [*cmd[:6], "surgeon@example.org", "--role", "surgeon", "--name", "Dr  Jane Smith", *cmd[-2:]]
    made = subprocess.run(named, env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    from scopecast.app import build_telehealth
    from scopecast.telehealth_setup import telehealth_settings
    from telehealth.store.reports import signer_name

    monkeypatch.setenv("SCOPECAST_TELEHEALTH_DATA_DIR", str(tmp_path))
    services = build_telehealth(telehealth_settings())
    try:
        assert signer_name(services.store, 2) == "Dr Jane Smith"
    finally:
        services.store.close()


def _read_lines(stream, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _setup_link(lines: queue.Queue[str], seen: list[str], timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        match = re.search(r"(http://\S+/setup#token=\S+)", line)
        if match:
            return match.group(1)
    return None


async def _watch_sample(port: int, token: str) -> tuple[dict, dict]:
    """Watch the sample as a monitor would; returns its first findings event and the stream's detail meanwhile."""
    from stream.testing import client

    session = await client.watch(f"ws://127.0.0.1:{port}/ws", "sample", token=token)
    try:
        findings = await session.next_event("findings", timeout=60)  # the shipped polyp model loads and runs
        await asyncio.sleep(1.0)  # a second of the clip, watched
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            detail = (await http.get(f"http://127.0.0.1:{port}/api/streams/sample", timeout=5)).json()
    finally:
        await session.close()
    return findings, detail


def test_scopecast_serve_starts_on_defaults_and_the_first_person_signs_in_through_the_link(tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SCOPECAST_PORT": str(port),
        "SCOPECAST_LOG_FORMAT": "json",
        "SCOPECAST_TELEHEALTH_DATA_DIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "scopecast", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        link = _setup_link(lines, seen, 60)
        assert link is not None and link.startswith(f"{base}/setup#token="), "".join(seen)[-2000:]
        ready = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert ready is not None and ready.status_code == 200, f"server did not become ready: {proc.poll()}"
        assert "sample" in ready.json()["streams"]
        # Signed out, the sample is not to be seen: the monitor sends you to sign in, the API says why.
        assert httpx.get(f"{base}/api/streams", timeout=5).status_code == 401
        monitor = httpx.get(f"{base}/monitor", timeout=5)
        assert monitor.status_code == 303 and monitor.headers["location"].startswith("/signin?next=")
        # The one-time link creates the administrator, once.
        setup_token = link.split("#token=", 1)[1]
        made = httpx.post(
            f"{base}/api/setup",
            json={"token": setup_token, "email": "admin@clinic.test", "password": "correct horse battery staple"},
            timeout=20,
        )
        assert made.status_code in (200, 201), made.text
        again = httpx.post(
            f"{base}/api/setup",
            json={"token": setup_token, "email": "mallory@evil.test", "password": "correct horse battery staple"},
            timeout=20,
        )
        assert again.status_code in (403, 410), again.text
        headers = {"Authorization": f"Bearer {made.json()['token']}"}
        streams = httpx.get(f"{base}/api/streams", headers=headers, timeout=5).json()
        assert streams[0]["label"] == "colonoscopy-sample.mp4" and streams[0]["model"] == "polyp"
        time.sleep(1.5)
        detail = httpx.get(f"{base}/api/streams/sample", headers=headers, timeout=5).json()
        # Nobody watches yet: the clip is not decoded and the model does not run, for nobody.
        assert detail["ai_reason"] == "paused: nobody is watching" and detail["last_result_seq"] is None, detail
        assert detail["last_frame_seq"] <= 1, detail
        findings, detail = asyncio.run(_watch_sample(port, made.json()["token"]))
        assert findings["model"]["name"] == "polyp"  # the shipped model ran for the viewer
        assert detail["last_frame_seq"] > 10, "the bundled clip plays once watched"
        assert detail["ai_available"], detail["ai_reason"]
        assert detail["last_inference_ms"] and detail["last_inference_ms"] > 0
        cookies = {"scopecast_session": made.json()["token"]}
        assert httpx.get(f"{base}/monitor", cookies=cookies, timeout=5).status_code == 200
        assert httpx.get(f"{base}/patient", timeout=5).status_code == 200
        login = httpx.post(f"{base}/api/login", json={"email": "x@example.org", "password": "wrong"}, timeout=5)
        assert login.status_code == 401
        database = next(tmp_path.glob("*.db"))
        assert database.stat().st_mode & 0o077 == 0, "the database must be owner-only"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    time.sleep(0.2)
    while not lines.empty():
        seen.append(lines.get())
    output = "".join(seen)
    assert proc.returncode == 0, output[-2000:]
    assert "monitor at http://127.0.0.1" in output
    assert "Traceback" not in output
