"""The README's run command, for real: `scopecast serve` as a process on embedded defaults."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_user_add_creates_an_account_and_refuses_a_duplicate(tmp_path):
    env = {**os.environ, "SCOPECAST_TELEHEALTH_DATA_DIR": str(tmp_path), "NEW_PASSWORD": "correct horse battery staple"}
    cmd = [sys.executable, "-m", "scopecast", "user", "add", "--email", "gp@example.org", "--role", "gp", "--password-env", "NEW_PASSWORD"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and "created gp account" in first.stdout, first.stderr
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "gp@example.org" not in again.stdout
    assert "already" in again.stderr.lower() or "exists" in again.stderr.lower(), again.stderr
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0, "the generated secret must be owner-only"


def test_scopecast_serve_starts_on_defaults_and_stops_cleanly(tmp_path):
    port = _free_port()
    env = {**os.environ, "SCOPECAST_PORT": str(port), "SCOPECAST_LOG_FORMAT": "json",
           "SCOPECAST_TELEHEALTH_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scopecast", "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        ready = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert ready is not None and ready.status_code == 200, f"server did not become ready: {proc.poll()}"
        assert "sample" in ready.json()["streams"]
        streams = httpx.get(f"http://127.0.0.1:{port}/api/streams", timeout=5).json()
        assert streams[0]["label"] == "colonoscopy-sample.mp4" and streams[0]["model"] == "polyp"
        time.sleep(1.5)
        detail = httpx.get(f"http://127.0.0.1:{port}/api/streams/sample", timeout=5).json()
        assert detail["last_frame_seq"] > 10, "the bundled clip must be playing"
        for _ in range(60):  # the shipped polyp model loads and analyses the clip
            detail = httpx.get(f"http://127.0.0.1:{port}/api/streams/sample", timeout=5).json()
            if detail["ai_available"] and detail["last_result_seq"]:
                break
            time.sleep(0.5)
        assert detail["ai_available"], detail["ai_reason"]
        assert detail["last_inference_ms"] and detail["last_inference_ms"] > 0
        assert httpx.get(f"http://127.0.0.1:{port}/monitor", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/patient", timeout=5).status_code == 200
        login = httpx.post(f"http://127.0.0.1:{port}/api/login", json={"email": "x@example.org", "password": "wrong"}, timeout=5)
        assert login.status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert proc.returncode == 0, output[-2000:]
    assert "monitor at http://127.0.0.1" in output
    assert "Traceback" not in output
