"""Recording with consent on the whole server: telehealth's consent records decide, the annotated sample stream is
recorded to MP4 with its findings track, listed on the case, played back over HTTP (with Range), and refused, stopped
or deleted where it must be. A real uvicorn server on loopback; files decoded back with PyAV."""

from __future__ import annotations

import asyncio
import io
import shutil
import struct
from collections.abc import Iterator
from datetime import timedelta

import av
import httpx
import numpy as np
import pytest
from sqlalchemy import select, update

from perception.vlm.grounded import GroundedBackend
from scopecast.app import build_telehealth, create_app
from scopecast.assets import SAMPLE_CLIP
from scopecast.recording_setup import INTERRUPTED
from scopecast.settings import Settings
from stream.recording.findings_track import read_findings_track
from stream.recording.mp4_writer import Mp4Writer, VideoFormat
from stream.rooms import RoomGrant
from telehealth.accounts import add_user
from telehealth.recording_files import RecordingFiles
from telehealth.recording_records import RecordingSource
from telehealth.recording_retention import RetentionSweep
from telehealth.records import Actor, Role, utc_now
from telehealth.services import TelehealthServices
from telehealth.store.recordings import open_recording
from telehealth.store.tables import AuditEventRow, RecordingRow
from tests.helpers.fakes import BoxModel, registry_with
from tests.helpers.recording_fakes import PacedCamera, PacedMicrophone, QuietMember
from tests.helpers.servers import running_server
from tests.telehealth.telehealth_testutil import PASSWORD, fast_settings, gp_opens_case

FRAME_S = 1 / 25  # the sample clip's frame time is at most this


@pytest.fixture
def services(tmp_path) -> Iterator[TelehealthServices]:
    made = build_telehealth(fast_settings(tmp_path / "telehealth"), segmenter_factory=lambda: None)
    for email, role in (("gp@clinic.test", Role.gp), ("admin@clinic.test", Role.admin)):
        add_user(made.store, email, PASSWORD, role)
    yield made
    made.store.close()


def app_for(services: TelehealthServices):  # -> FastAPI
    settings = Settings(sources=[f"scope={SAMPLE_CLIP}"], model="box", consult_model="box", register_wait_ms=0)
    return create_app(
        settings, registry=registry_with(box=BoxModel()), vlm=GroundedBackend(use_embeddings=False), telehealth=services
    )


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await client.post("/api/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def new_case(client: httpx.AsyncClient, gp: dict[str, str]) -> int:
    r = await client.post(
        "/api/patients",
        json={
            "full_name": "Ada Lovelace",
            "birth_date": "1950-12-10",
            "identifier_kind": "mrn",
            "identifier_value": "MRN-1",
        },
        headers=gp,
    )
    assert r.status_code == 201, r.text
    r = await client.post("/api/cases", json={"patient_id": r.json()["id"], "label": "colon"}, headers=gp)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def audit_actions(services: TelehealthServices, object_type: str) -> list[str]:
    with services.store.db.session() as s:
        return list(
            s.scalars(
                select(AuditEventRow.action).where(AuditEventRow.object_type == object_type).order_by(AuditEventRow.id)
            )
        )


async def test_record_with_consent_play_back_and_delete(services) -> None:
    async with running_server(app_for(services)) as host, httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c:
        gp = await login(c, "gp@clinic.test")
        admin = await login(c, "admin@clinic.test")
        case_id = await new_case(c, gp)

        # -- no consent yet: refused, naming the case; nothing is written -----------------------------------------
        r = await c.post("/api/streams/scope/recording", json={"case_id": case_id}, headers=gp)
        assert r.status_code == 403 and r.json()["detail"] == f"no recording consent on case {case_id}"
        r = await c.post("/api/streams/scope/recording", json={"case_id": "twelve"}, headers=gp)
        assert r.status_code == 422
        r = await c.post("/api/streams/nope/recording", json={"case_id": case_id}, headers=gp)
        assert r.status_code == 404 and "unknown stream 'nope'" in r.json()["detail"]
        r = await c.post("/api/streams/scope/recording", json={"case_id": case_id})
        assert r.status_code == 401

        # -- the GP writes the consent down, then records ----------------------------------------------------------
        r = await c.post(
            f"/api/cases/{case_id}/recording-consents",
            json={"purpose": "teaching", "patient_video": True, "patient_audio": False},
            headers=gp,
        )
        assert r.status_code == 201, r.text
        consent = r.json()
        assert consent["consented_by"] == "patient" and consent["active"] and consent["purpose"] == "teaching"
        r = await c.post(
            f"/api/cases/{case_id}/recording-consents",
            json={"purpose": "gossip", "patient_video": True, "patient_audio": True},
            headers=gp,
        )
        assert r.status_code == 422

        r = await c.post("/api/streams/scope/recording", json={"case_id": case_id}, headers=gp)
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "recording"
        r = await c.post("/api/streams/scope/recording", json={"case_id": case_id}, headers=gp)
        assert r.status_code == 409 and "already recording" in r.json()["detail"]
        await asyncio.sleep(3.0)
        r = await c.get("/api/streams/scope/recording", headers=gp)
        assert r.json()["state"] == "recording" and r.json()["frames"] > 10
        r = await c.post("/api/streams/scope/recording/stop", headers=gp)
        assert r.status_code == 200 and r.json()["state"] == "stopped", r.text
        r = await c.post("/api/streams/scope/recording/stop", headers=gp)
        assert r.status_code == 409 and "not recording" in r.json()["detail"]

        # -- listed on the case ------------------------------------------------------------------------------------
        r = await c.get(f"/api/cases/{case_id}/recordings", headers=gp)
        [listed] = r.json()
        assert listed["state"] == "stopped" and listed["started_by_name"] == "gp@clinic.test"
        assert 2.0 <= listed["duration_s"] <= 4.0 and listed["size_bytes"] > 10_000 and not listed["has_audio"]

        # -- played back: seeking works (Range), the file decodes, the findings sit on its frames ------------------
        r = await c.get(listed["video_url"], headers={**gp, "Range": "bytes=0-99"})
        assert r.status_code == 206 and len(r.content) == 100
        assert r.headers["content-range"] == f"bytes 0-99/{listed['size_bytes']}"
        r = await c.get(listed["video_url"], headers=gp)
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        container = av.open(io.BytesIO(r.content))
        times = [float(f.pts * f.time_base) for f in container.decode(container.streams.video[0])]
        assert len(times) == listed["frames"] >= 30 and not container.streams.audio
        assert abs(times[-1] - listed["duration_s"]) < 0.05
        r = await c.get(listed["findings_url"], headers=gp)
        lines = read_findings_track(r.content)
        assert len(lines) >= 5
        on_frame = sum(min(abs(t - line.t) for t in times) < 0.001 for line in lines)
        assert on_frame >= 0.8 * len(lines)
        assert all(min(abs(t - line.t) for t in times) <= 2 * FRAME_S for line in lines)

        # -- consent withdrawn: the running recording stops, no new one starts ------------------------------------
        r = await c.post("/api/streams/scope/recording", json={"case_id": case_id}, headers=gp)
        assert r.status_code == 201
        await asyncio.sleep(1.0)
        r = await c.post(f"/api/cases/{case_id}/recording-consents/{consent['id']}/withdraw", headers=gp)
        assert r.status_code == 200 and r.json()["active"] is False
        r = await c.get("/api/streams/scope/recording", headers=gp)
        assert r.json()["state"] == "stopped"
        assert r.json()["reason"] == f"recording consent on case {case_id} was withdrawn"
        r = await c.post("/api/streams/scope/recording", json={"case_id": case_id}, headers=gp)
        assert r.status_code == 403 and r.json()["detail"] == f"no recording consent on case {case_id}"
        r = await c.get(f"/api/cases/{case_id}/recordings", headers=gp)
        second = r.json()[1]
        assert second["state"] == "ended_early" and second["end_reason"].startswith("recording consent")

        # -- deletion: admins only ---------------------------------------------------------------------------------
        r = await c.delete(f"/api/recordings/{listed['id']}", headers=gp)
        assert r.status_code == 403 and r.json()["detail"] == "this needs role admin, you are gp"
        r = await c.delete(f"/api/recordings/{listed['id']}", headers=admin)
        assert r.status_code == 204
        r = await c.get(listed["video_url"], headers=gp)
        assert r.status_code == 404
        r = await c.get(f"/api/cases/{case_id}/recordings", headers=gp)
        assert [x["id"] for x in r.json()] == [second["id"]]
    # The deleted recording's files are gone; the other's stay.
    left = sorted(f.name for f in services.settings.recordings_dir.iterdir())
    assert left == sorted(_names(services, second["id"]))
    for name in left:  # patient data: readable by the server's own user only
        assert (services.settings.recordings_dir / name).stat().st_mode & 0o777 == 0o600
    assert services.settings.recordings_dir.stat().st_mode & 0o777 == 0o700
    actions = audit_actions(services, "recording")
    assert actions.count("start_recording") == 2 and actions.count("stop_recording") == 2
    assert actions.count("view") == 2  # the first range of the playback and the whole download; not the findings
    assert actions[-1] == "delete"
    assert audit_actions(services, "recording_consent") == ["create", "withdraw"]


def _names(services: TelehealthServices, recording_id: int) -> list[str]:
    with services.store.db.session() as s:
        row = s.get(RecordingRow, recording_id)
        assert row is not None
        return [row.video_file, row.findings_file]


async def test_retention_sweep_deletes_old_recordings(services) -> None:
    async with running_server(app_for(services)) as host, httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c:
        gp = await login(c, "gp@clinic.test")
        case_id = await new_case(c, gp)
        r = await c.post(
            f"/api/cases/{case_id}/recording-consents",
            json={
                "purpose": "clinical_record",
                "patient_video": True,
                "patient_audio": True,
                "representative_name": "Byron, A. (daughter)",
            },
            headers=gp,
        )
        assert r.status_code == 201 and r.json()["consented_by"] == "Byron, A. (daughter)"
        ids = []
        for _ in range(2):
            r = await c.post("/api/streams/scope/recording", json={"case_id": case_id}, headers=gp)
            assert r.status_code == 201, r.text
            await asyncio.sleep(0.8)
            r = await c.post("/api/streams/scope/recording/stop", headers=gp)
            ids.append(r.json()["recording_id"])
    old, recent = ids
    days = services.settings.recording_retention_days
    with services.store.db.session() as s:
        s.execute(
            update(RecordingRow).where(RecordingRow.id == old).values(started_at=utc_now() - timedelta(days=days + 1))
        )
    old_files = _names(services, old)
    sweep = RetentionSweep(services.store, RecordingFiles(services.settings.recordings_dir), days)
    assert await sweep.sweep_once() == [old]
    left = sorted(f.name for f in services.settings.recordings_dir.iterdir())
    assert left == sorted(_names(services, recent)) and not set(old_files) & set(left)
    assert audit_actions(services, "recording")[-1] == "expire"
    assert await sweep.sweep_once() == []


async def test_consult_recording_follows_the_patients_consent(services) -> None:
    app = app_for(services)
    microphone = PacedMicrophone()
    async with running_server(app) as host, httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c:
        gp = await login(c, "gp@clinic.test")
        case_id = await new_case(c, gp)
        r = await c.post(f"/api/cases/{case_id}/consults", headers=gp)
        consult = r.json()
        start, stop = f"/api/consults/{consult['id']}/recording", f"/api/consults/{consult['id']}/recording/stop"
        r = await c.post(start, headers=gp)
        assert r.status_code == 409 and r.json()["detail"].startswith("the patient is not connected")

        # The patient's side, seated straight into the live room (joining over WebRTC is test_consult_browser's).
        await app.state.rooms.take_seat(
            RoomGrant(consult["room_id"], "patient"), QuietMember(), PacedCamera(), microphone
        )
        r = await c.post(start, headers=gp)
        assert r.status_code == 403 and r.json()["detail"] == f"no recording consent on case {case_id}"
        r = await c.post(
            f"/api/cases/{case_id}/recording-consents",
            json={"purpose": "clinical_record", "patient_video": False, "patient_audio": True},
            headers=gp,
        )
        video_refused = r.json()
        r = await c.post(start, headers=gp)
        assert r.status_code == 403 and "does not cover the patient's video" in r.json()["detail"]
        await c.post(f"/api/cases/{case_id}/recording-consents/{video_refused['id']}/withdraw", headers=gp)

        recorded = {}
        for audio in (False, True):
            r = await c.post(
                f"/api/cases/{case_id}/recording-consents",
                json={"purpose": "clinical_record", "patient_video": True, "patient_audio": audio},
                headers=gp,
            )
            consent_id = r.json()["id"]
            r = await c.post(start, headers=gp)
            assert r.status_code == 200 and r.json()["has_audio"] is audio, r.text
            r = await c.post(start, headers=gp)
            assert r.status_code == 409 and "already recording" in r.json()["detail"]
            await asyncio.sleep(2.0)
            r = await c.post(stop, headers=gp)
            assert r.json()["state"] == "stopped"
            recorded[audio] = r.json()["recording_id"]
            await c.post(f"/api/cases/{case_id}/recording-consents/{consent_id}/withdraw", headers=gp)

        listed = {x["id"]: x for x in (await c.get(f"/api/cases/{case_id}/recordings", headers=gp)).json()}
        for audio, recording_id in recorded.items():
            assert listed[recording_id]["source"] == "consult" and listed[recording_id]["has_audio"] is audio
            r = await c.get(listed[recording_id]["video_url"], headers=gp)
            container = av.open(io.BytesIO(r.content))
            assert sum(1 for _ in container.decode(container.streams.video[0])) >= 10
            container = av.open(io.BytesIO(r.content))
            if audio:
                samples = sum(f.samples for f in container.decode(container.streams.audio[0]))
                assert samples >= 48_000  # over a second of the patient's sound
            else:
                assert not container.streams.audio  # nothing of the patient's sound without their consent
    microphone.stop()


async def test_a_recording_cut_off_by_a_crash_is_closed_playable_at_start_up(services, tmp_path) -> None:
    async with running_server(app_for(services)) as host, httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c:
        gp = await login(c, "gp@clinic.test")
        case_id = await new_case(c, gp)
        r = await c.post(
            f"/api/cases/{case_id}/recording-consents",
            json={"purpose": "clinical_record", "patient_video": True, "patient_audio": False},
            headers=gp,
        )
        assert r.status_code == 201
    # A recording the server was writing when it was killed: two seconds of whole fragments, then a torn one.
    files = RecordingFiles(services.settings.recordings_dir)
    gp_actor = Actor(1, Role.gp)
    record = open_recording(services.store, files, gp_actor, case_id, RecordingSource.stream, False)
    scratch = tmp_path / "being-written.mp4"
    with scratch.open("wb") as sink:
        writer = Mp4Writer(sink, VideoFormat(320, 240), with_audio=False)
        for i in range(75):
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), (i * 3) % 255, np.uint8), format="rgb24")
            writer.write_video(frame, i * 3000)
        sink.flush()
        on_disk = scratch.read_bytes()  # what a kill leaves: no trailer, the last fragment still being written
    files.path(record.video_file).write_bytes(on_disk + struct.pack(">I4s", 4096, b"moof") + b"\0" * 100)

    restarted = build_telehealth(services.settings, segmenter_factory=lambda: None)  # the server starting again
    async with (
        running_server(app_for(restarted)) as host,
        httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c,
    ):
        gp = await login(c, "gp@clinic.test")
        [listed] = (await c.get(f"/api/cases/{case_id}/recordings", headers=gp)).json()
        assert listed["state"] == "ended_early" and listed["end_reason"] == INTERRUPTED
        assert listed["frames"] >= 30 and 1.0 <= listed["duration_s"] <= 2.5
        r = await c.get(listed["video_url"], headers=gp)
        assert len(r.content) == listed["size_bytes"]
        container = av.open(io.BytesIO(r.content))
        assert sum(1 for _ in container.decode(container.streams.video[0])) == listed["frames"]
    restarted.store.close()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
async def test_gp_plays_a_recording_with_the_findings_overlay(services, artifacts_dir) -> None:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); scripts/install.sh installs it")
    from playwright.async_api import async_playwright, expect

    async with running_server(app_for(services)) as host, httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c:
        gp = await login(c, "gp@clinic.test")
        case_id = await new_case(c, gp)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
            )
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                await gp_opens_case(page, host, case_id)
                await expect(page.locator("body")).to_have_attribute("data-recordings-loaded", str(case_id))
                await expect(page.locator("#consent-state")).to_contain_text("No recording consent")
                await expect(page.locator("#recordings-empty")).to_be_visible()

                # On the monitor, recording is refused until the case has consent, and says so.
                monitor = await context.new_page()
                await monitor.goto(f"http://{host}/monitor?stream=scope")
                await expect(monitor.locator("#streams")).to_have_value("scope")
                await monitor.fill("#record-case", str(case_id))
                await monitor.click("#record")
                await expect(monitor.locator("#error")).to_have_text(f"no recording consent on case {case_id}")

                # Consent is taken on the GP page; then the surgeon's monitor records, its light on while it does.
                await page.select_option("#consent-purpose", "teaching")
                await page.click("#consent-form button[type=submit]")
                await expect(page.locator("#consent-state")).to_contain_text("Recording consent in force: teaching")
                await monitor.click("#watch")
                await expect(monitor.locator("#status-badge")).not_to_contain_text("waiting", timeout=20_000)
                await monitor.click("#record")
                await expect(monitor.locator("#record-light")).to_have_text(f"● REC case {case_id}")
                await asyncio.sleep(3.0)
                await monitor.click("#record-stop")
                await expect(monitor.locator("#record-light")).to_have_text("Recording saved")
                await monitor.close()
                # The page's header is what lets a cookie write through: a request without it is not signed in.
                cookie = {c["name"]: c["value"] for c in await context.cookies()}
                r = await c.post(
                    "/api/streams/scope/recording",
                    json={"case_id": case_id},
                    cookies=cookie,
                    headers={"Origin": f"http://{host}"},
                )
                assert r.status_code == 401
                c.cookies.clear()

                await page.evaluate("() => { delete document.body.dataset.recordingsLoaded; }")
                await page.reload()
                await expect(page.locator("body")).to_have_attribute("data-recordings-loaded", str(case_id))
                row = page.locator("#recordings-body tr")
                await expect(row).to_have_count(1)
                await expect(row).to_contain_text("gp@clinic.test")
                await page.click(".play-recording")
                # The video plays and the canvas draws the findings track on its frames.
                await page.wait_for_function(
                    "() => Number(document.body.dataset.overlayDraws || 0) >= 5", timeout=20_000
                )
                played = await page.evaluate("() => document.getElementById('rec-video').currentTime")
                assert played > 0
                await expect(page.locator("#rec-findings")).to_contain_text("thing")
                shots = artifacts_dir / "recording"
                shots.mkdir(parents=True, exist_ok=True)
                await page.locator("#player").screenshot(path=str(shots / "player.png"))
                # A drawn canvas has non-transparent pixels where the box is.
                painted = await page.evaluate(
                    """() => { const c = document.getElementById('rec-overlay');
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
                )
                assert painted > 100
            finally:
                await browser.close()
