"""Fuzzing the real photo endpoint: hundreds of broken, hostile and odd bodies, each a clear 4xx or a well-formed photo.

A seeded generator makes the bodies from real encodings of every format the intake accepts (JPEG baseline,
progressive, grey and CMYK; PNG RGB, RGBA, palette, grey, 16-bit and interlaced; HEIC) and a few it refuses (WebP,
GIF, TIFF, BMP): cut at many lengths, header bytes flipped, random bytes behind real magic, absurd declared
dimensions with valid checksums, and pixel bombs under the pixel limit. Each goes through the real app (multipart,
auth, the decode slots, clean_photo, the store). Nothing may answer 5xx; process RSS must not run away.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from telehealth_testutil import PASSWORD, fast_settings, include_telehealth, textured_image

from scopecast.app import build_telehealth
from telehealth.accounts import add_user

# Pillow warns (and carries on) about the EXIF blocks the mutations break: expected here, not a finding.
pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")

SEED = 20261201
RSS_GROWTH_LIMIT_MB = 300


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def reset_peak_rss() -> bool:
    """Start VmHWM (peak RSS) afresh, so it measures this run only (Linux >= 4.0; False where not allowed)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def save(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def base_files() -> dict[str, bytes]:
    """One real file per format variant; the 'refused:' ones are formats the intake does not accept."""
    rgb = textured_image(1, (320, 240))
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "jpeg": save(rgb, "JPEG", quality=90),
        "jpeg-progressive": save(rgb, "JPEG", quality=90, progressive=True),
        "jpeg-exif-rotated": save(rgb, "JPEG", quality=90, exif=exif.tobytes()),
        "jpeg-grey": save(rgb.convert("L"), "JPEG", quality=90),
        "jpeg-cmyk": save(rgb.convert("CMYK"), "JPEG", quality=90),
        "png": save(rgb, "PNG"),
        "png-rgba": save(rgb.convert("RGBA"), "PNG"),
        "png-palette": save(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0),
        "png-grey": save(rgb.convert("L"), "PNG"),
        "png-16bit": save(rgb.convert("L").convert("I;16"), "PNG"),
        "png-interlaced": save(rgb, "PNG", interlace=1) if _png_interlace_supported() else save(rgb, "PNG"),
        "heic": save(rgb, "HEIF", quality=80),
        "refused:webp": save(rgb, "WEBP"),
        "refused:gif": save(rgb, "GIF"),
        "refused:tiff": save(rgb, "TIFF"),
        "refused:bmp": save(rgb, "BMP"),
    }


def _png_interlace_supported() -> bool:
    try:
        save(Image.new("RGB", (4, 4)), "PNG", interlace=1)
    except (TypeError, ValueError, OSError):
        return False
    return True


def png_with_size(png: bytes, width: int, height: int) -> bytes:
    """The IHDR rewritten to claim another size, with a valid CRC so the parser believes it."""
    ihdr = bytearray(png[12:29])  # type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    return png[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + png[33:]


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = jpeg.find(marker)
        if at > 0:
            return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9 :]
    raise ValueError("no SOF marker")


def heic_with_size(heic: bytes, width: int, height: int) -> bytes:
    at = heic.find(b"ispe")
    return heic[: at + 8] + struct.pack(">II", width, height) + heic[at + 16 :]


def bodies(rng: random.Random) -> Iterator[tuple[str, bytes]]:
    bases = base_files()
    for name, data in bases.items():
        yield f"{name}/whole", data
        lengths = {1, 2, 4, 8, 10, 16, 20, 32, 50, 64, 100, 150, 200, len(data) // 2, len(data) - 1}
        lengths |= {rng.randrange(1, len(data)) for _ in range(5)}
        for n in sorted(lengths):
            yield f"{name}/cut-{n}", data[:n]
        for i in range(5):  # flipped bytes in the header, where the parser decides what to allocate
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(min(len(data), 300))] = rng.randrange(256)
            yield f"{name}/header-mutation-{i}", bytes(mutated)
        mutated = bytearray(data)  # and a few in the body
        for _ in range(8):
            mutated[rng.randrange(len(data) // 4, len(data))] = rng.randrange(256)
        yield f"{name}/body-mutation", bytes(mutated)
        yield f"{name}/random-after-magic", data[:16] + rng.randbytes(rng.randint(10, 5000))
    for i in range(10):
        yield f"random-{i}", rng.randbytes(rng.randint(1, 20_000))
    yield "empty", b""
    # Absurd declared sizes, checksums intact: refused from the header, not by trying to allocate them.
    for width, height in ((65535, 65535), (6300, 6300), (100_000, 1), (1, 10_000_000), (0, 0), (2**31 - 1, 2**31 - 1)):
        yield f"png-claims-{width}x{height}", png_with_size(bases["png"], width, height)
        yield f"png-rgba-claims-{width}x{height}", png_with_size(bases["png-rgba"], width, height)
        if 0 < width < 65536 and 0 < height < 65536:
            yield f"jpeg-claims-{width}x{height}", jpeg_with_size(bases["jpeg"], width, height)
            yield f"jpeg-progressive-claims-{width}x{height}", jpeg_with_size(bases["jpeg-progressive"], width, height)
        yield f"heic-claims-{width}x{height}", heic_with_size(bases["heic"], width, height)
    # Real pixel bombs, under the 40 MP pixel limit: tiny files that decode to 100-160 MB each.
    yield "bomb-rgba-6300", png_bomb(6300, 6300, colour_type=6, bit_depth=8, channels=4)
    yield "bomb-rgb-6000", png_bomb(6000, 6000, colour_type=2, bit_depth=8, channels=3)
    yield "bomb-grey-16bit-6000", png_bomb(6000, 6000, colour_type=0, bit_depth=16, channels=1)
    yield "bomb-grey-6300", png_bomb(6300, 6300, colour_type=0, bit_depth=8, channels=1)
    yield "bomb-rgba-16bit-4000", png_bomb(4000, 4000, colour_type=6, bit_depth=16, channels=4)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int, colour_type: int, bit_depth: int, channels: int) -> bytes:
    """An all-zero PNG written row by row, so making it costs this test process no image-sized memory."""
    row = b"\0" * (1 + width * channels * bit_depth // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@pytest.fixture
async def uploader(tmp_path):
    services = build_telehealth(fast_settings(tmp_path / "telehealth"), segmenter_factory=lambda: None)
    add_user(services.store, "pat@mail.test", PASSWORD, "patient")
    app = FastAPI()
    include_telehealth(app, services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=60) as client:
        token = (await client.post("/api/login", json={"email": "pat@mail.test", "password": PASSWORD})).json()["token"]
        client.cookies.clear()
        headers = {"Authorization": f"Bearer {token}"}
        case = (await client.post("/api/cases", json={}, headers=headers)).json()["id"]
        yield client, headers, case, services
    await services.close()


async def test_photo_endpoint_fuzz(uploader) -> None:
    client, headers, case, services = uploader
    rng = random.Random(SEED)
    tried, statuses, failures = 0, Counter(), []
    stored_ids = []
    made = list(bodies(rng))  # made before measuring: the run's memory is the app's, not the generator's
    start_rss = peak_rss = status_mb("VmRSS")
    exact_peak = reset_peak_rss()
    for name, data in made:
        tried += 1
        try:
            r = await client.post(
                f"/api/cases/{case}/photos",
                files={"photo": ("upload", data, "application/octet-stream")},
                headers=headers,
            )
        except Exception as exc:  # noqa: BLE001 - an exception escaping the app is a 500 in production
            failures.append(f"{name}: raised {type(exc).__name__}: {exc}")
            continue
        statuses[r.status_code] += 1
        peak_rss = max(peak_rss, status_mb("VmRSS"))
        if r.status_code == 201:
            receipt = r.json()
            stored_ids.append(receipt["id"])
            photo = await client.get(receipt["photo_url"], headers=headers)
            with Image.open(io.BytesIO(photo.content)) as stored:
                stored.load()
                ok = (stored.format, stored.size) == ("JPEG", (receipt["width"], receipt["height"]))
            if not (photo.status_code == 200 and ok and name.split("/")[0].split(":")[0] != "refused"):
                failures.append(f"{name}: 201 but stored photo is not a well-formed JPEG of the receipt's size")
        elif not (400 <= r.status_code < 500):
            failures.append(f"{name}: {r.status_code} {r.text[:200]}")
        elif not isinstance(r.json().get("detail"), str | list) or not r.json()["detail"]:
            failures.append(f"{name}: {r.status_code} without a JSON detail")
        elif name.endswith("/whole") and not name.startswith("refused:") and r.status_code != 201:
            failures.append(f"{name}: a valid photo was refused: {r.status_code} {r.text[:200]}")
        elif name.startswith("refused:") and name.endswith("/whole") and r.status_code != 415:
            failures.append(f"{name}: an unaccepted format answered {r.status_code}, not 415")
    await services.analyses.wait_idle()
    if exact_peak:  # VmHWM also sees peaks between the samples taken after each request
        peak_rss = max(peak_rss, status_mb("VmHWM"))
    growth = peak_rss - start_rss
    four = sum(n for status, n in statuses.items() if 400 <= status < 500)
    two = sum(n for status, n in statuses.items() if 200 <= status < 300)
    print(
        f"\nphoto fuzz: {tried} bodies tried, {four} answered 4xx, {two} answered 2xx "
        f"({dict(sorted(statuses.items()))}), max RSS growth {growth:.0f} MB"
    )
    assert not failures, "\n".join(failures)
    assert tried >= 300 and four + two == tried
    assert services.store.row_counts()["photo_submissions"] == len(stored_ids)
    assert growth < RSS_GROWTH_LIMIT_MB, f"RSS grew {growth:.0f} MB over the run"
