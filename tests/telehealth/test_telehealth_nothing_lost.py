"""Kill the server with SIGKILL in the middle of 100 concurrent uploads: nothing acknowledged is lost, nothing
unacknowledged is half there, and retries with the same Idempotency-Key never duplicate."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from telehealth_testutil import PASSWORD, SECRET, fast_settings, jpeg_bytes

from scopecast.app import build_telehealth
from telehealth.accounts import add_user
from telehealth.photo_files import TEMP_PREFIX
from telehealth.records import Actor

REPO = Path(__file__).resolve().parents[2]
UPLOADS = 100
KILL_AFTER_RECEIPTS = 25


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "SCOPECAST_TELEHEALTH_DATA_DIR": str(data_dir),
        "SCOPECAST_TELEHEALTH_SECRET_KEY": SECRET,
        "SCOPECAST_TELEHEALTH_COOKIE_SECURE": "false",
        "SCOPECAST_TELEHEALTH_ARGON2_TIME_COST": "1",
        "SCOPECAST_TELEHEALTH_ARGON2_MEMORY_KIB": "1024",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "telehealth_server_app:build_app",
            "--app-dir",
            str(Path(__file__).resolve().parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def wait_ready(base: str, proc: subprocess.Popen, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if (await c.get(f"{base}/patient", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("server did not start")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.timeout(60)
async def test_sigkill_mid_upload_loses_nothing(tmp_path) -> None:
    data_dir = tmp_path / "telehealth"
    setup = build_telehealth(fast_settings(data_dir))
    patient = add_user(setup.store, "pat@mail.test", PASSWORD, "patient")
    case_id = setup.store.create_case(Actor(patient.id, patient.role), None, "left heel").id
    setup.store.db.dispose()

    photos = {i: jpeg_bytes(1000 + i, (800, 600)) for i in range(UPLOADS)}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(data_dir, port)
    try:
        await wait_ready(base, server)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=UPLOADS)) as c:
            token = (await c.post("/api/login", json={"email": "pat@mail.test", "password": PASSWORD})).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}

            async def upload(i: int) -> tuple[int, dict | None]:
                try:
                    r = await c.post(
                        f"/api/cases/{case_id}/photos",
                        files={"photo": (f"{i}.jpg", photos[i], "image/jpeg")},
                        headers={**auth, "Idempotency-Key": f"upload-{i}"},
                    )
                except httpx.TransportError:
                    return i, None
                assert r.status_code == 201, r.text
                return i, r.json()

            receipts: dict[int, dict] = {}
            failed: list[int] = []
            for next_done in asyncio.as_completed([upload(i) for i in range(UPLOADS)]):
                i, receipt = await next_done
                if receipt is None:
                    failed.append(i)
                    continue
                receipts[i] = receipt
                if len(receipts) == KILL_AFTER_RECEIPTS:
                    server.send_signal(signal.SIGKILL)  # no shutdown, no flush: a power cut as far as we can tell
        server.wait(10)
        assert failed, "the kill came too late: every upload finished first"
        assert len(receipts) + len(failed) == UPLOADS

        # Restart: start-up reconciliation runs before the first request.
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(data_dir, port)
        await wait_ready(base, server)
        photos_dir = data_dir / "photos"
        assert not [p for p in photos_dir.rglob("*") if p.name.startswith(TEMP_PREFIX)], "half-written files remain"
        with sqlite3.connect(data_dir / "telehealth.db") as db:
            rows = dict(db.execute("SELECT id, sha256 FROM photo_submissions WHERE file_state = 'stored'").fetchall())
            assert db.execute("SELECT count(*) FROM photo_submissions WHERE file_state != 'stored'").fetchone()[0] == 0
        on_disk = {p.stem for p in photos_dir.rglob("*.jpg")}
        assert set(rows.values()) == on_disk, "database and file store disagree"
        for path in photos_dir.rglob("*.jpg"):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem

        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            token = (await c.post("/api/login", json={"email": "pat@mail.test", "password": PASSWORD})).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            for i, receipt in receipts.items():
                assert rows[receipt["id"]] == receipt["sha256"]
                stored = await c.get(receipt["photo_url"], headers=auth)
                assert stored.status_code == 200 and hashlib.sha256(stored.content).hexdigest() == receipt["sha256"]
            # The client retries what failed, with the same keys: whatever committed before the kill comes back as
            # its original receipt (200), the rest is stored now (201); never a duplicate.
            retried = [
                await c.post(
                    f"/api/cases/{case_id}/photos",
                    files={"photo": (f"{i}.jpg", photos[i], "image/jpeg")},
                    headers={**auth, "Idempotency-Key": f"upload-{i}"},
                )
                for i in failed
            ]
            assert {r.status_code for r in retried} <= {200, 201}
            again = [
                await c.post(
                    f"/api/cases/{case_id}/photos",
                    files={"photo": (f"{i}.jpg", photos[i], "image/jpeg")},
                    headers={**auth, "Idempotency-Key": f"upload-{i}"},
                )
                for i in list(receipts)[:3]
            ]
            assert [r.status_code for r in again] == [200, 200, 200]
            photos_listed = (await c.get(f"/api/cases/{case_id}", headers=auth)).json()["photos"]
        assert len(photos_listed) == UPLOADS
    finally:
        stop(server)
