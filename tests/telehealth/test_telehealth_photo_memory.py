"""Photo decodes stay within their memory budget: bombs are refused from the header, parallel uploads take turns.

The RSS figures come from a fresh process per case (intake_memory.py), so nothing this test process holds or has
freed earlier blurs them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from telehealth_testutil import PASSWORD, jpeg_bytes

from telehealth import case_api as telehealth_api
from telehealth.accounts import add_user
from telehealth.decode_slots import DecodeSlots

REPO = Path(__file__).resolve().parents[2]


def measured(case: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tests.telehealth.intake_memory", case],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=REPO,
    )
    result = json.loads(out.stdout)
    print(result)
    return result


def test_four_parallel_bombs_are_refused_before_decoding() -> None:
    """The hostile tester's case: four 170 KB 6300x6300 RGBA PNGs at once took RSS from 0.87 to 4.6 GB."""
    r = measured("api-bomb-x4")
    assert r["outcome"] == [413, 413, 413, 413]
    assert r["rss_peak_mb"] - r["rss_before_mb"] < 40


def test_four_parallel_48_mp_jpegs_are_decoded_reduced_two_at_a_time() -> None:
    """48 MP JPEGs are decoded at half scale (12 MP, 48 MB) and two at a time: the peak is about 2 x 2 x 48 MB
    (decoded image + RGB copy, two slots), and freed memory goes back to the system afterwards."""
    r = measured("api-big-jpeg-x4")
    assert r["outcome"] == [201, 201, 201, 201]
    assert r["rss_peak_mb"] - r["rss_before_mb"] < 400
    assert r["rss_after_mb"] - r["rss_before_mb"] < 120


async def test_decode_slots_bound_concurrency() -> None:
    slots = DecodeSlots(2)
    busy, peak, lock = [0], [0], threading.Lock()

    def work(i: int) -> int:
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        time.sleep(0.05)
        with lock:
            busy[0] -= 1
        return i

    assert await asyncio.gather(*(slots.run(work, i) for i in range(7))) == list(range(7))
    assert peak[0] == 2
    with pytest.raises(ValueError):
        DecodeSlots(0)


async def test_uploads_share_the_routers_decode_slots(services, client, monkeypatch) -> None:
    """Six parallel uploads through the real route never decode more than max_concurrent_decodes (2) at once."""
    busy, peak, lock = [0], [0], threading.Lock()
    real = telehealth_api.clean_photo

    def counting(data, limits):  # type: ignore[no-untyped-def]
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        try:
            time.sleep(0.05)
            return real(data, limits)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(telehealth_api, "clean_photo", counting)
    assert services.decodes.limit == services.settings.max_concurrent_decodes == 2
    add_user(services.store, "pat@mail.test", PASSWORD, "patient")
    token = (await client.post("/api/login", json={"email": "pat@mail.test", "password": PASSWORD})).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    case = (await client.post("/api/cases", json={}, headers=headers)).json()["id"]
    sent = [
        client.post(
            f"/api/cases/{case}/photos", files={"photo": ("p.jpg", jpeg_bytes(i), "image/jpeg")}, headers=headers
        )
        for i in range(6)
    ]
    assert [r.status_code for r in await asyncio.gather(*sent)] == [201] * 6
    assert peak[0] == 2
