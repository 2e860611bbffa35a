"""Measure the memory a photo upload costs: RSS before, peak and after, each case in a fresh process.

    .venv/bin/python -m tests.telehealth.intake_memory            # all cases, one line each (from the repository root)
    .venv/bin/python -m tests.telehealth.intake_memory api-bomb-x4

Not a test (it starts a process per case); test_telehealth_photo_memory.py runs the same measurement with bounds.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CASES = ("bomb-rgba-png", "big-jpeg", "big-rgb-png", "api-bomb-x4", "api-big-jpeg-x4", "api-photo-rgba-png-x4")


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def body(case: str) -> bytes:
    from PIL import Image

    from tests.telehealth.telehealth_testutil import textured_image

    out = io.BytesIO()
    if "bomb" in case:  # the hostile tester's file: 170 KB, 6300x6300 RGBA, all black, under the 40 MP pixel limit
        Image.new("RGBA", (6300, 6300)).save(out, format="PNG", optimize=True)
    elif "jpeg" in case:  # a 48 MP phone photo
        textured_image(1, (8000, 6000)).save(out, format="JPEG", quality=90)
    elif "photo" in case:  # a 20 MP RGBA PNG: a real picture inside every limit (80 MB decoded)
        textured_image(3, (5000, 4000)).convert("RGBA").save(out, format="PNG", compress_level=1)
    else:  # 30 MP RGB PNG: under the pixel limit
        textured_image(2, (6300, 4700)).save(out, format="PNG", compress_level=1)
    return out.getvalue()


async def through_api(data: bytes, copies: int) -> list[int]:
    import httpx
    from fastapi import FastAPI

    from scopecast.app import build_telehealth
    from telehealth.accounts import add_user
    from tests.telehealth.telehealth_testutil import PASSWORD, fast_settings, include_telehealth

    services = build_telehealth(
        fast_settings(Path(tempfile.mkdtemp()) / "t"), segmenter_factory=lambda: None, embedder_factory=lambda: None
    )
    add_user(services.store, "pat@mail.test", PASSWORD, "patient")
    app = FastAPI()
    include_telehealth(app, services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=120) as c:
        r = await c.post("/api/login", json={"email": "pat@mail.test", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        case = (await c.post("/api/cases", json={}, headers=headers)).json()["id"]
        c.cookies.clear()
        reset_peak()
        sent = [
            c.post(f"/api/cases/{case}/photos", files={"photo": ("p", data, "image/png")}, headers=headers)
            for _ in range(copies)
        ]
        codes = [r.status_code for r in await asyncio.gather(*sent)]
    await services.close()
    return codes


def measure(case: str) -> dict[str, object]:
    from telehealth.case_api import intake_limits
    from telehealth.errors import PhotoRejected
    from telehealth.photo_intake import clean_photo
    from tests.telehealth.telehealth_testutil import fast_settings

    data = body(case)
    if case.startswith("api-"):
        # The server's own code (the composition root imports streaming and perception too) is loaded before the
        # baseline: what is measured is what the requests cost, not the imports.
        import perception.vlm.grounded  # noqa: F401
        import scopecast.app  # noqa: F401
    before = status_kb("VmRSS")
    if case.startswith("api-"):
        outcome: object = asyncio.run(through_api(data, int(case.rsplit("x", 1)[1])))
    else:
        reset_peak()
        try:
            photo = clean_photo(data, intake_limits(fast_settings(Path("/nonexistent"))))
            outcome = f"stored {photo.width}x{photo.height}"
        except PhotoRejected as exc:
            outcome = f"{exc.status_code} {exc.reason}"
    peak, after = status_kb("VmHWM"), status_kb("VmRSS")
    mb = lambda kb: round(kb / 1024)  # noqa: E731
    return {
        "case": case,
        "body_kb": len(data) // 1024,
        "rss_before_mb": mb(before),
        "rss_peak_mb": mb(peak),
        "rss_after_mb": mb(after),
        "outcome": outcome,
    }


def main(cases: list[str]) -> None:
    for case in cases:
        out = subprocess.run(
            [sys.executable, "-m", "tests.telehealth.intake_memory", "--in-process", case],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        print(out.stdout.strip())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--in-process"]:
        print(json.dumps(measure(sys.argv[2])))
    else:
        main(sys.argv[1:] or list(CASES))
