"""The patient's guided capture over HTTP: live checks of a camera frame (light, focus, marker, wound in frame) and
the history of what they sent, received then reviewed, with no ids or fingerprints."""

from __future__ import annotations

import numpy as np
from PIL import Image
from telehealth_testutil import encode, jpeg_bytes
from wound_photos import scene, scene_jpeg
from wound_photos import synthetic_wound_services as services  # noqa: F401  (overrides conftest's)


async def check(world, body: bytes, who: str = "pat_a"):
    return await world.client.post(
        "/api/capture-check", content=body, headers={**world.headers[who], "Content-Type": "image/jpeg"}
    )


def by_name(response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    return {c["name"]: c for c in response.json()["checks"]}


async def test_a_good_frame_passes_every_check(world) -> None:
    r = await check(world, scene_jpeg(True))
    checks = by_name(r)
    assert set(checks) == {"light", "focus", "marker", "wound"}
    assert all(c["passed"] for c in checks.values()), checks
    assert r.json()["ready"] is True


async def test_each_problem_is_named_with_what_to_do(world) -> None:
    no_marker = by_name(await check(world, scene_jpeg(False)))
    assert not no_marker["marker"]["passed"] and "place the printed marker" in no_marker["marker"]["message"]
    dark = (scene(True).rgb * 0.1).astype(np.uint8)
    checks = by_name(await check(world, encode(Image.fromarray(dark), "JPEG", quality=90)))
    assert not checks["light"]["passed"] and "Too dark" in checks["light"]["message"]
    blurred = np.asarray(Image.fromarray(scene(True).rgb).resize((80, 60)).resize((800, 600)))
    checks = by_name(await check(world, encode(Image.fromarray(blurred), "JPEG", quality=90)))
    assert not checks["focus"]["passed"] and "hold the phone still" in checks["focus"]["message"]


async def test_bad_frames_get_a_reason_and_nothing_is_stored(world) -> None:
    before = world.services.store.row_counts()
    for body, status, reason in (
        (b"", 422, "no frame"),
        (b"not an image at all", 415, "not an image"),
        (b"\xff\xd8" + b"\x00" * 2_100_000, 413, "too large"),
    ):
        r = await check(world, body)
        assert r.status_code == status, (status, r.text)
        assert reason in r.json()["detail"]
    assert (await world.client.post("/api/capture-check", content=jpeg_bytes())).status_code == 401
    assert world.services.store.row_counts() == before


async def test_history_says_received_then_reviewed_without_ids(world) -> None:
    c, pat = world.client, world.headers["pat_a"]
    assert (await c.get("/api/my-photos", headers=pat)).json() == []
    r = await c.post(
        f"/api/cases/{world.case_ids['pat_a']}/photos",
        files={"photo": ("w.jpg", scene_jpeg(True), "image/jpeg")},
        headers=pat,
    )
    assert r.status_code == 201
    await world.services.analyses.wait_idle()
    [sent] = (await c.get("/api/my-photos", headers=pat)).json()
    assert sent["status"] == "received" and sent["case_label"] == "left heel"
    assert "sha256" not in sent and "id" not in sent
    assert (await c.get(sent["thumbnail_url"], headers=pat)).status_code == 200
    gp = world.headers["gp_a"]
    report = (await c.post(f"/api/cases/{world.case_ids['pat_a']}/reports", headers=gp)).json()
    assert (await c.post(f"/api/reports/{report['id']}/sign", headers=gp)).status_code == 200
    [sent] = (await c.get("/api/my-photos", headers=pat)).json()
    assert sent["status"] == "reviewed" and sent["reviewed_at"] is not None
    assert (await c.get("/api/my-photos", headers=world.headers["pat_b"])).json() == []
    assert (await c.get("/api/my-photos", headers=gp)).status_code == 403
