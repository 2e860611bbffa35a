"""A real PACS: Orthanc with its DICOMweb plugin on loopback. A case pushed by STOW-RS is read back by QIDO-RS and
WADO-RS; a PACS that refuses, is unreachable or never answers leaves each instance queued with the reason; and the
queue outlives a SIGKILL."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pydicom
import pytest
from dicom_world import JANE, Clinic, clinic, open_case, outbox_to
from dicomweb_client.api import DICOMwebClient
from fastapi import FastAPI
from orthanc_server import free_port, orthanc
from pydicom.encaps import generate_frames
from telehealth_testutil import PASSWORD, include_telehealth

from telehealth.dicom.instances import person_name
from telehealth.dicom.measurement_sr import read_measurements
from telehealth.dicom.records import FailureKind, InstanceKind, OutboxState
from telehealth.dicom.stow import StowSender
from telehealth.records import IdentifierKind, PatientIdentity, PhotoSource, utc_now
from telehealth.store.analyses import read_analysis
from telehealth.store.dicom_outbox import case_outbox, due_items

HERE = Path(__file__).resolve().parent
ALEX = PatientIdentity("Alex Jones", date(1980, 1, 2), IdentifierKind.mrn, "MRN-0042")
REPO = HERE.parents[2]


@pytest.fixture(scope="module")
def pacs(tmp_path_factory) -> Iterator[str]:
    with orthanc(tmp_path_factory.mktemp("orthanc")) as url:
        yield url


@pytest.fixture
def world(tmp_path, pacs) -> Iterator[Clinic]:
    services = clinic(tmp_path / "telehealth", pacs)
    yield open_case(services)
    services.store.close()


@pytest.fixture
def offline(tmp_path) -> Iterator[Clinic]:
    """A clinic with no PACS configured (these tests bring their own outbox): they need no Orthanc."""
    services = clinic(tmp_path / "telehealth")
    yield open_case(services)
    services.store.close()


@pytest.fixture
def silent_pacs() -> Iterator[tuple[str, socket.socket]]:
    """A port that accepts connections (the kernel completes the handshake) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/dicom-web", sock
    sock.close()


def qido(url: str) -> DICOMwebClient:
    return DICOMwebClient(url)


def first_frame_sha256(ds: pydicom.Dataset) -> str:
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    return hashlib.sha256(frame[: frame.rindex(b"\xff\xd9") + 2]).hexdigest()


def test_a_case_pushed_to_orthanc_reads_back_as_scopecast_holds_it(world, pacs) -> None:
    photo = world.photo()
    capture = world.photo(source=PhotoSource.consult_capture)
    queued = case_outbox(world.services.store, world.case_id)
    assert [i.state for i in queued] == [OutboxState.queued] * 6  # queued by the analysis, before any send
    sent = world.services.dicom.drain()
    assert [(i.state, i.failure, i.attempts) for i in sent] == [(OutboxState.sent, None, 1)] * 6

    client = qido(pacs)
    study_uid = world.services.dicom.builder.source(photo.id).study.study_uid
    studies = client.search_for_studies(search_filters={"PatientID": JANE.identifier_value})
    assert study_uid in [s["0020000D"]["Value"][0] for s in studies]  # other tests' cases are Jane's too
    studies = client.search_for_studies(search_filters={"StudyInstanceUID": study_uid})
    study = pydicom.Dataset.from_json(studies[0])
    assert str(study.PatientName) == person_name(JANE.full_name) == "Jane Smith^"
    case = world.services.store.require_case(world.gp, world.case_id)
    assert study.StudyDate == case.created_at.strftime("%Y%m%d")
    instances = client.search_for_instances(study_instance_uid=study_uid)
    assert len(instances) == 6

    by_kind = {(i.photo_id, i.kind): i.sop_instance_uid for i in sent}
    for record, kind in ((photo, InstanceKind.photo), (capture, InstanceKind.capture)):
        uid = by_kind[(record.id, kind)]
        meta = client.search_for_instances(study_uid, search_filters={"SOPInstanceUID": uid})
        series_uid = meta[0]["0020000E"]["Value"][0]
        got = client.retrieve_instance(study_uid, series_uid, uid)
        assert first_frame_sha256(got) == record.sha256  # the PACS holds the very JPEG the store keeps

    uid = by_kind[(photo.id, InstanceKind.measurements)]
    meta = client.search_for_instances(study_uid, search_filters={"SOPInstanceUID": uid})
    sr = client.retrieve_instance(study_uid, meta[0]["0020000E"]["Value"][0], uid)
    stored = read_analysis(world.services.store, world.gp, photo.id).assessment.measurement
    said = read_measurements(sr)
    assert (said.area_cm2, said.length_cm, said.width_cm) == pytest.approx(
        (stored.area_cm2, stored.length_cm, stored.width_cm)
    )
    assert said.observer_device == "synthetic-mask"


def test_a_resend_keeps_the_uids_and_the_pacs_keeps_one_copy(world, pacs) -> None:
    photo = world.photo()
    first = {i.sop_instance_uid for i in world.services.dicom.drain()}
    again = world.services.dicom.enqueue_photo(photo.id, again=True)
    assert {i.sop_instance_uid for i in again} == first and {i.state for i in again} == {OutboxState.queued}
    assert {i.state for i in world.services.dicom.drain()} == {OutboxState.sent}
    study_uid = world.services.dicom.builder.source(photo.id).study.study_uid
    assert len(qido(pacs).search_for_instances(study_instance_uid=study_uid)) == 3


def _failed_and_kept(world: Clinic, kind: FailureKind, words: str) -> None:
    items = case_outbox(world.services.store, world.case_id)
    assert items and all(i.state is OutboxState.failed and i.failure is kind for i in items), items
    assert all(words in (i.last_error or "") and i.attempts == 1 for i in items), [i.last_error for i in items]
    assert all(i.next_attempt_at is not None and i.next_attempt_at > utc_now() for i in items)
    assert due_items(world.services.store, utc_now()) == []  # waiting for the retry, not lost
    later = utc_now() + timedelta(hours=2)
    assert {i.sop_instance_uid for i in due_items(world.services.store, later)} == {i.sop_instance_uid for i in items}


def test_a_pacs_that_refuses_leaves_the_instances_queued_with_the_reason(world, pacs) -> None:
    world.photo()
    wrong = outbox_to(world.services, pacs.replace("/dicom-web", "/no-dicom-web-here"))
    assert {(i.failure, i.http_status) for i in wrong.drain()} == {(FailureKind.refused, 404)}
    _failed_and_kept(world, FailureKind.refused, "refused the request (HTTP 404)")
    # Delivered once the address is right: a restart makes every unsent instance due again.
    right = outbox_to(world.services, pacs)
    assert right.resume() == 3
    assert {i.state for i in right.drain()} == {OutboxState.sent}


def test_orthanc_answers_a_conflict_and_a_bad_instance_with_reasons(world, pacs) -> None:
    photo = world.photo()
    image = world.services.dicom.builder.photo_instances(photo.id, only=InstanceKind.photo)[0].dataset
    sender = StowSender(pacs, 10)
    conflict = sender.send(image, study_uid="1.2.826.0.1.3680043.99.1")  # an instance of another study
    assert conflict is not None and (conflict.kind, conflict.http_status) == (FailureKind.conflict, 409)
    assert "conflict (HTTP 409)" in conflict.reason
    broken = pydicom.Dataset()
    broken.file_meta = image.file_meta
    broken.StudyInstanceUID = image.StudyInstanceUID  # no SOP Class or Instance UID: not an instance at all
    refused = sender.send(broken)
    assert refused is not None and (refused.kind, refused.http_status) == (FailureKind.refused, 400)
    assert sender.send(image) is None


def test_an_unreachable_pacs_leaves_the_instances_queued_with_the_reason(offline) -> None:
    world = offline
    photo = world.photo()
    closed = outbox_to(world.services, f"http://127.0.0.1:{free_port()}/dicom-web")
    closed.enqueue_photo(photo.id)
    assert {i.failure for i in closed.drain()} == {FailureKind.unreachable}
    _failed_and_kept(world, FailureKind.unreachable, "connection refused")


def test_a_pacs_that_never_answers_times_out_and_the_instances_stay_queued(offline, silent_pacs) -> None:
    url, _sock = silent_pacs
    world = offline
    photo = world.photo()
    silent = outbox_to(world.services, url, timeout_s=0.5)
    silent.enqueue_photo(photo.id)
    assert {i.failure for i in silent.drain()} == {FailureKind.timeout}
    _failed_and_kept(world, FailureKind.timeout, "did not answer within 0.5 s")


def test_the_queue_survives_a_sigkill_mid_send_and_delivers_after_restart(tmp_path, pacs, silent_pacs) -> None:
    url, listener = silent_pacs
    data_dir = tmp_path / "telehealth"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(HERE.parent), str(HERE)]))
    child = subprocess.Popen(
        [sys.executable, str(HERE / "outbox_child.py"), str(data_dir), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.startswith("queued case"), line + (child.stderr.read() if child.stderr else "")
        case_id = int(line.split()[-1])
        ready, _, _ = select.select([listener], [], [], 60)  # the child has connected: its first send is in flight
        assert ready, "the child never tried to send"
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()

    services = clinic(data_dir, pacs)  # the restart, with the PACS up
    try:
        before = case_outbox(services.store, case_id)
        # Killed mid-send: nothing was recorded, so every instance is still queued, untried.
        assert [(i.state, i.attempts) for i in before] == [(OutboxState.queued, 0)] * 3
        services.dicom.resume()
        assert {i.state for i in services.dicom.drain()} == {OutboxState.sent}
        study_uid = services.dicom.builder.source(before[0].photo_id).study.study_uid
        assert len(qido(pacs).search_for_instances(study_instance_uid=study_uid)) == 3
    finally:
        services.store.close()


async def test_clinicians_see_each_instance_status_and_queue_a_case(tmp_path, pacs) -> None:
    services = clinic(tmp_path / "telehealth", pacs)
    try:
        world = open_case(services)
        other = open_case(services, ALEX)
        photo = world.photo()
        app = FastAPI()
        include_telehealth(app, services)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            emails = {}
            for name, clinic_ in (("mine", world), ("theirs", other)):
                user = services.store.user_record(clinic_.gp)
                r = await c.post("/api/login", json={"email": user.email, "password": PASSWORD})
                emails[name] = {"Authorization": f"Bearer {r.json()['token']}"}
                c.cookies.clear()
            r = await c.get(f"/api/cases/{world.case_id}/dicom", headers=emails["mine"])
            assert r.status_code == 200 and r.json()["pacs_configured"] is True
            assert [i["state"] for i in r.json()["instances"]] == ["queued"] * 3
            services.dicom.drain()
            r = await c.get(f"/api/cases/{world.case_id}/dicom", headers=emails["mine"])
            assert {(i["kind"], i["state"], i["attempts"]) for i in r.json()["instances"]} == {
                ("photo", "sent", 1),
                ("overlay", "sent", 1),
                ("measurements", "sent", 1),
            }
            r = await c.post(f"/api/cases/{world.case_id}/dicom", headers=emails["mine"])
            assert r.status_code == 202 and {i["state"] for i in r.json()["instances"]} == {"queued"}
            assert {i["photo_id"] for i in r.json()["instances"]} == {photo.id}
            r = await c.get(f"/api/cases/{world.case_id}/dicom", headers=emails["theirs"])
            assert r.status_code == 404
            r = await c.post(f"/api/cases/{other.case_id}/dicom", headers=emails["theirs"])
            assert r.status_code == 409 and "has no photos" in r.json()["detail"]
    finally:
        services.store.close()


async def test_without_a_pacs_queueing_is_refused_with_the_setting_to_set(tmp_path) -> None:
    services = clinic(tmp_path / "telehealth")
    try:
        world = open_case(services)
        world.photo()
        assert case_outbox(services.store, world.case_id) == []  # nothing queued without a PACS
        app = FastAPI()
        include_telehealth(app, services)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            user = services.store.user_record(world.gp)
            token = (await c.post("/api/login", json={"email": user.email, "password": PASSWORD})).json()["token"]
            c.cookies.clear()
            r = await c.post(f"/api/cases/{world.case_id}/dicom", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 409 and "SCOPECAST_DICOMWEB_URL" in r.json()["detail"]
    finally:
        services.store.close()


async def test_the_background_sender_delivers_what_is_queued_and_what_was_left_from_before(tmp_path, pacs) -> None:
    import asyncio

    services = clinic(tmp_path / "telehealth", pacs, poll_s=0.2)
    try:
        world = open_case(services)
        left = world.photo()  # queued before the sender runs: as after a restart
        assert {i.state for i in case_outbox(services.store, world.case_id)} == {OutboxState.queued}
        services.dicom.start()
        # A photo analysed while it runs is queued from the analysis worker's thread and wakes the sender.
        await services.analyses.analyse(world.photo(analyse=False).id)
        for _ in range(150):
            items = await asyncio.to_thread(case_outbox, services.store, world.case_id)
            if len(items) == 6 and all(i.state is OutboxState.sent for i in items):
                break
            await asyncio.sleep(0.1)
        assert [(i.photo_id, i.state) for i in items] == [(left.id, OutboxState.sent)] * 3 + [
            (left.id + 1, OutboxState.sent)
        ] * 3
    finally:
        await services.close()


async def test_the_sender_stops_even_when_its_cancel_is_swallowed(tmp_path, pacs, monkeypatch) -> None:
    """On Python 3.11 asyncio.wait_for returns instead of raising when the event it awaits is set as it is cancelled
    (a photo queued from the analysis thread as the server closes). The race itself is rare; here wait_for is made
    to swallow every cancel, and closing must still end the sender instead of waiting on it for ever."""
    import asyncio

    real_wait_for = asyncio.wait_for

    async def swallowing_wait_for(awaitable, timeout):
        try:
            return await real_wait_for(awaitable, timeout)
        except asyncio.CancelledError:
            return None

    services = clinic(tmp_path / "telehealth", pacs, poll_s=0.2)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(asyncio, "wait_for", swallowing_wait_for)
            services.dicom.start()
            await asyncio.sleep(0.5)  # resumed and drained: the sender now waits for a wake-up
            closing = asyncio.ensure_future(services.dicom.aclose())
            done, _ = await asyncio.wait({closing}, timeout=5)
        if closing not in done:
            closing.cancel()  # wait_for is the real one again: this cancel ends the sender, so a failure cannot hang
            await asyncio.wait({closing}, timeout=5)
        assert closing in done, "the sender ran on after its cancel was swallowed"
    finally:
        await services.close()
