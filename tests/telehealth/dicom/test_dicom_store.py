"""The outbox and the kept UIDs in the database, on SQLite and PostgreSQL; the DICOM settings and the retry waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from dicom_world import Clinic, clinic, open_case, outbox_to
from postgres_server import fresh_database
from pydantic import ValidationError

from telehealth.dicom.outbox import retry_delay_s
from telehealth.dicom.records import FailureKind, InstanceKind, OutboxState
from telehealth.dicom.settings import DicomSettings
from telehealth.records import utc_now
from telehealth.store.dicom_outbox import (
    analysed_photos_not_queued,
    case_outbox,
    due_items,
    enqueue,
    instance_uids,
    make_unsent_due,
    record_failure,
    record_sent,
)
from telehealth.store.tables import AuditEventRow

PACS = "http://127.0.0.1:9/dicom-web"  # never contacted here


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path) -> Iterator[Clinic]:
    if request.param == "sqlite":
        services = clinic(tmp_path / "telehealth")
        yield open_case(services)
        services.store.close()
        return
    with fresh_database(request.getfixturevalue("postgres_server")) as url:
        services = clinic(tmp_path / "telehealth", database_url=url)
        yield open_case(services)
        services.store.close()


def test_uids_are_made_once_and_kept(world) -> None:
    photo = world.photo(analyse=False)
    store = world.services.store
    first = instance_uids(store, photo.id, InstanceKind.photo, None)
    assert instance_uids(store, photo.id, InstanceKind.photo, None) == first
    sr = instance_uids(store, photo.id, InstanceKind.measurements, None)
    assert sr.study_uid == first.study_uid and sr.series_uid != first.series_uid
    assert (first.series_number, sr.series_number) == (1, 2) and first.sop_instance_uid.startswith("2.25.")
    rooted = instance_uids(store, world.photo(analyse=False).id, InstanceKind.photo, "1.2.826.0.1.99")
    assert rooted.sop_instance_uid.startswith("1.2.826.0.1.99.") and len(rooted.sop_instance_uid) <= 64


def test_an_instance_moves_from_queued_to_failed_to_sent_and_stays_sent(world) -> None:
    store = world.services.store
    photo = world.photo()  # analysed; no PACS in this clinic, so nothing was queued
    assert case_outbox(store, world.case_id) == [] and analysed_photos_not_queued(store) == [photo.id]
    outbox = world.services.dicom
    uid = instance_uids(store, photo.id, InstanceKind.photo, None).sop_instance_uid
    [queued] = enqueue(store, [uid])
    assert (queued.state, queued.attempts, queued.kind) == (OutboxState.queued, 0, InstanceKind.photo)
    assert analysed_photos_not_queued(store) == []
    retry_at = utc_now() + timedelta(minutes=5)
    failed = record_failure(store, uid, FailureKind.server_error, "the PACS failed (HTTP 503)", 503, retry_at)
    assert (failed.state, failed.attempts, failed.http_status, failed.failure) == (
        OutboxState.failed,
        1,
        503,
        FailureKind.server_error,
    )
    assert due_items(store, utc_now()) == [] and len(due_items(store, retry_at)) == 1
    assert make_unsent_due(store) == 1 and len(due_items(store, utc_now())) == 1
    sent = record_sent(store, uid)
    assert (sent.state, sent.attempts, sent.last_error, sent.next_attempt_at) == (OutboxState.sent, 2, None, None)
    assert enqueue(store, [uid])[0].state is OutboxState.sent  # queueing again does not resend...
    assert enqueue(store, [uid], again=True)[0].state is OutboxState.queued  # ...unless asked to
    with store.db.session() as s:
        exports = [(a.action, a.object_type, a.object_id) for a in s.query(AuditEventRow).all()]
    assert ("export", "photo", photo.id) in exports
    assert outbox.enabled is False


def test_settings_name_the_environment_variable_and_refuse_nonsense(monkeypatch) -> None:
    monkeypatch.setenv("SCOPECAST_DICOMWEB_URL", "http://pacs.example:8042/dicom-web/")
    assert DicomSettings().url == "http://pacs.example:8042/dicom-web"
    monkeypatch.setenv("SCOPECAST_DICOMWEB_URL", "pacs.example:8042")
    with pytest.raises(ValidationError, match="must start with http:// or https://"):
        DicomSettings()
    monkeypatch.delenv("SCOPECAST_DICOMWEB_URL")
    assert DicomSettings().url is None
    with pytest.raises(ValidationError, match="not a DICOM UID root"):
        DicomSettings(uid_root="1.02.3")
    with pytest.raises(ValidationError, match="not a DICOM UID root"):
        DicomSettings(uid_root="1.2.abc")


def test_retry_waits_double_and_stop_at_the_cap() -> None:
    assert [retry_delay_s(n, 5, 60) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert retry_delay_s(10_000, 5, 3600) == 3600


def test_a_photo_whose_file_is_gone_stays_queued_saying_why(world) -> None:
    photo = world.photo()
    outbox = outbox_to(world.services, PACS, retry_max_s=600)
    queued = outbox.enqueue_photo(photo.id)
    world.services.store.files.path_for(photo.sha256).unlink()
    done = outbox.drain()
    assert {(i.state, i.failure) for i in done} == {(OutboxState.failed, FailureKind.build_failed)}
    assert all(f"photo {photo.id}'s file is missing" in (i.last_error or "") for i in done)
    assert {i.sop_instance_uid for i in done} == {i.sop_instance_uid for i in queued}
    # Nothing will change soon: the next try waits the longest wait, not the first one.
    assert all(i.next_attempt_at and i.next_attempt_at > utc_now() + timedelta(seconds=590) for i in done)
