"""Shared builders for telehealth tests: settings, images, accounts."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from telehealth.settings import TelehealthSettings

SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse battery"
FUSEG_IMAGES = Path("/work/shared/data/fuseg/unlabeled/images")


def fast_settings(data_dir: Path, **overrides: object) -> TelehealthSettings:
    """Real settings with cheap Argon2 so the suite stays fast on a busy two-core box."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "secret_key": SECRET,
        "cookie_secure": False,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }
    values.update(overrides)
    return TelehealthSettings(**values)  # type: ignore[arg-type]


def textured_image(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A bright, sharp random texture: passes the darkness and blur checks, and every seed hashes differently."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(60, 255, size=(size[1] // 8 + 1, size[0] // 8 + 1, 3), dtype=np.uint8)
    pixels = np.kron(cells, np.ones((8, 8, 1), dtype=np.uint8))[: size[1], : size[0]]
    return Image.fromarray(pixels, "RGB")


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (320, 240)) -> bytes:
    return encode(textured_image(seed, size), "JPEG", quality=90)


async def gp_opens_case(page, host: str, case_id: int, email: str = "gp@clinic.test") -> None:  # type: ignore[no-untyped-def]
    """In a Playwright page: sign in on /gp and open a case, waiting until the page says it is loaded."""
    from playwright.async_api import expect

    await page.goto(f"http://{host}/gp#case={case_id}")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("#login button[type=submit]")
    await expect(page.locator("body")).to_have_attribute("data-case-loaded", str(case_id), timeout=20_000)


def telehealth_routes(services, rooms=None) -> list:
    """The telehealth routers as `scopecast serve` builds them, drafting reports with the grounded VLM."""
    from perception.vlm.grounded import GroundedBackend
    from scopecast.app import telehealth_routers

    return telehealth_routers(services, GroundedBackend(use_embeddings=False), rooms)


def include_telehealth(app, services, rooms=None) -> None:
    for router in telehealth_routes(services, rooms):
        app.include_router(router)
