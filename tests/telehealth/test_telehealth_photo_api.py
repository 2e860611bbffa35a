"""Photo submission over HTTP: receipts, idempotent retries, access to the stored photo, durable files."""

from __future__ import annotations

import asyncio
import hashlib
import io

from PIL import Image
from sqlalchemy import select
from telehealth_testutil import FUSEG_IMAGES, jpeg_bytes

from telehealth.records import FileState
from telehealth.store.reconcile import reconcile
from telehealth.store.tables import AuditEventRow, PhotoSubmissionRow


def photo_part(data: bytes, name: str = "wound.jpg", media_type: str = "image/jpeg") -> dict:
    return {"photo": (name, data, media_type)}


async def test_upload_receipt_and_readback(world) -> None:
    c, pat = world.client, world.headers["pat_a"]
    case_id = world.case_ids["pat_a"]
    r = await c.post(f"/api/cases/{case_id}/photos", files=photo_part(jpeg_bytes(1)), headers=pat)
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert set(receipt) >= {"id", "received_at", "sha256", "width", "height", "thumbnail_url"}
    assert (receipt["width"], receipt["height"], receipt["case_id"]) == (320, 240, case_id)

    stored = await c.get(receipt["photo_url"], headers=pat)
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(stored.content).hexdigest() == receipt["sha256"]
    assert stored.headers["cache-control"] == "private, no-store"
    files = world.services.store.files
    assert files.path_for(receipt["sha256"]).read_bytes() == stored.content
    thumb = await c.get(receipt["thumbnail_url"], headers=pat)
    assert thumb.status_code == 200 and max(Image.open(io.BytesIO(thumb.content)).size) <= 320

    # The GP who invited the patient sees it; the other GP, the other patient and the surgeon get 404.
    assert (await c.get(receipt["photo_url"], headers=world.headers["gp_a"])).status_code == 200
    for other in ("gp_b", "pat_b", "surgeon"):
        assert (await c.get(receipt["thumbnail_url"], headers=world.headers[other])).status_code == 404
    detail = (await c.get(f"/api/cases/{case_id}", headers=world.headers["gp_a"])).json()
    assert [p["id"] for p in detail["photos"]] == [receipt["id"]]

    with world.services.store.db.session() as s:
        actions = {(a.action, a.object_type) for a in s.scalars(select(AuditEventRow))}
    assert {("create", "photo"), ("view", "photo"), ("view", "thumbnail"), ("view", "wound_case")} <= actions


async def test_gp_uploads_for_their_patient_and_cookie_reads(world) -> None:
    c = world.client
    r = await c.post(
        f"/api/cases/{world.case_ids['pat_a']}/photos", files=photo_part(jpeg_bytes(2)), headers=world.headers["gp_a"]
    )
    assert r.status_code == 201
    r2 = await c.post(
        f"/api/cases/{world.case_ids['pat_a']}/photos", files=photo_part(jpeg_bytes(3)), headers=world.headers["gp_b"]
    )
    assert r2.status_code == 404
    # The page's session cookie reads alone; a write with it also needs the session's CSRF token.
    token = world.headers["pat_a"]["Authorization"].split()[1]
    c.cookies.set("scopecast_session", token)
    try:
        assert (await c.get(r.json()["thumbnail_url"])).status_code == 200
        posted = await c.post(f"/api/cases/{world.case_ids['pat_a']}/photos", files=photo_part(jpeg_bytes(4)))
        assert posted.status_code == 403 and "X-CSRF-Token" in posted.json()["detail"]
    finally:
        c.cookies.clear()


async def test_idempotency_key_returns_the_original_receipt(world) -> None:
    c, pat, case_id = world.client, world.headers["pat_a"], world.case_ids["pat_a"]
    headers = {**pat, "Idempotency-Key": "upload-123"}
    first = await c.post(f"/api/cases/{case_id}/photos", files=photo_part(jpeg_bytes(5)), headers=headers)
    again = await c.post(f"/api/cases/{case_id}/photos", files=photo_part(jpeg_bytes(5)), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    # Concurrent retries with one new key: exactly one row, every caller the same receipt.
    racing = {**pat, "Idempotency-Key": "upload-race"}
    results = await asyncio.gather(
        *(c.post(f"/api/cases/{case_id}/photos", files=photo_part(jpeg_bytes(6)), headers=racing) for _ in range(4))
    )
    assert sorted(r.status_code for r in results) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in results}) == 1
    with world.services.store.db.session() as s:
        assert (
            len(s.scalars(select(PhotoSubmissionRow).where(PhotoSubmissionRow.idempotency_key.is_not(None))).all()) == 2
        )


async def test_bad_photos_get_clear_reasons(world) -> None:
    c, pat, case_id = world.client, world.headers["pat_a"], world.case_ids["pat_a"]
    url = f"/api/cases/{case_id}/photos"
    liar = await c.post(url, files=photo_part(b"GIF89a but really a text file", "x.jpg"), headers=pat)
    assert liar.status_code == 415 and liar.json()["detail"].startswith("not an image:")
    dark = Image.new("RGB", (320, 240), (5, 5, 5))
    buf = io.BytesIO()
    dark.save(buf, "JPEG")
    r = await c.post(url, files=photo_part(buf.getvalue()), headers=pat)
    assert (r.status_code, r.json()["detail"]) == (422, "too dark, please retake")
    r = await c.post(url, data={"note": "hello"}, files={"other": ("a.txt", b"x", "text/plain")}, headers=pat)
    assert r.status_code == 422 and "field named 'photo'" in r.json()["detail"]
    r = await c.post(url, content=b"raw bytes", headers={**pat, "Content-Type": "image/jpeg"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]


async def test_oversize_upload_is_refused_with_sizes(services, world) -> None:
    c, pat, case_id = world.client, world.headers["pat_a"], world.case_ids["pat_a"]
    big = b"\xff\xd8" + b"\0" * 21_000_000  # 21 MB against the 20 MB default
    r = await c.post(f"/api/cases/{case_id}/photos", files=photo_part(big), headers=pat)
    assert r.status_code == 413
    assert r.json()["detail"].startswith("too large: 21.0 MB over 20 MB")


async def test_real_wound_photo_round_trip(world) -> None:
    import pytest

    paths = sorted(FUSEG_IMAGES.glob("*.jpg")) if FUSEG_IMAGES.is_dir() else []
    if not paths:
        pytest.skip(f"{FUSEG_IMAGES} is absent: real wound photos not available on this machine")
    r = await world.client.post(
        f"/api/cases/{world.case_ids['pat_a']}/photos",
        files=photo_part(paths[0].read_bytes()),
        headers=world.headers["pat_a"],
    )
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (512, 512)


async def test_reconcile_quarantines_orphans_and_flags_missing_files(world) -> None:
    store = world.services.store
    c, pat = world.client, world.headers["pat_a"]
    kept = (
        await c.post(f"/api/cases/{world.case_ids['pat_a']}/photos", files=photo_part(jpeg_bytes(10)), headers=pat)
    ).json()
    lost = (
        await c.post(f"/api/cases/{world.case_ids['pat_a']}/photos", files=photo_part(jpeg_bytes(11)), headers=pat)
    ).json()
    store.files.path_for(lost["sha256"]).unlink()
    orphan = store.files.put(hashlib.sha256(b"orphan").hexdigest(), b"orphan")  # file written, row never committed
    half = orphan.parent / ".tmp-interrupted"
    half.write_bytes(b"half a photo")
    report = reconcile(store)
    assert (report.temp_files_removed, report.files_quarantined, report.rows_flagged_missing) == (1, 1, 1)
    assert not half.exists() and not orphan.exists()
    assert (store.files.quarantine / orphan.name).exists()
    with store.db.session() as s:
        assert s.get(PhotoSubmissionRow, lost["id"]).file_state == FileState.missing.value
        assert s.get(PhotoSubmissionRow, kept["id"]).file_state == FileState.stored.value
    r = await c.get(lost["photo_url"], headers=pat)
    assert r.status_code == 404 and "missing" in r.json()["detail"]
    assert reconcile(store) == type(report)(0, 0, 0, 0)  # a second pass finds nothing left to fix
