"""Recording consent and recordings at the API boundary: who may take, read and withdraw consent, what bad input is
told, and who may see or delete a recording (the recording itself is tested in tests/scopecast/test_recording_journey.py)."""

from __future__ import annotations

from telehealth.recording_files import RecordingFiles
from telehealth.recording_records import RecordingSource
from telehealth.records import Actor, Role
from telehealth.store.recordings import RecordingEnd, close_recording, open_recording
from telehealth.store.tables import AuditEventRow

CONSENT = {"purpose": "clinical_record", "patient_video": True, "patient_audio": False}


async def test_who_may_take_and_withdraw_consent(world) -> None:
    c, h, case = world.client, world.headers, world.case_ids["pat_a"]
    url = f"/api/cases/{case}/recording-consents"
    r = await c.post(url, json=CONSENT, headers=h["pat_a"])
    assert r.status_code == 403 and "you are patient" in r.json()["detail"]
    r = await c.post(url, json=CONSENT, headers=h["gp_b"])  # another GP's patient: not even confirmed to exist
    assert r.status_code == 404 and r.json()["detail"] == f"no case {case}"
    r = await c.post(url, json=CONSENT, headers=h["surgeon"])  # not consulted on this case
    assert r.status_code == 404
    r = await c.post(url, json=CONSENT, headers=h["gp_a"])
    assert r.status_code == 201
    consent = r.json()
    assert consent["recorded_by"] > 0 and consent["consented_by"] == "patient" and consent["active"]

    r = await c.get(url, headers=h["gp_b"])
    assert r.status_code == 404
    r = await c.post(f"{url}/999/withdraw", headers=h["gp_a"])
    assert r.status_code == 404 and r.json()["detail"] == f"no recording consent 999 on case {case}"
    r = await c.post(f"{url}/{consent['id']}/withdraw", headers=h["gp_a"])
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["withdrawn_at"]
    r = await c.post(f"{url}/{consent['id']}/withdraw", headers=h["gp_a"])  # twice: still withdrawn, not an error
    assert r.status_code == 200
    [listed] = (await c.get(url, headers=h["admin"])).json()
    assert listed["active"] is False

    with world.services.store.db.session() as s:
        actions = [
            a.action
            for a in s.query(AuditEventRow)
            .filter(AuditEventRow.object_type == "recording_consent")
            .order_by(AuditEventRow.id)
        ]
    assert actions == ["create", "withdraw"]


async def test_bad_consent_input_is_named(world) -> None:
    c, h, case = world.client, world.headers, world.case_ids["pat_a"]
    url = f"/api/cases/{case}/recording-consents"
    cases = [
        ({**CONSENT, "purpose": "marketing"}, 422, "purpose"),
        ({**CONSENT, "representative_name": ""}, 422, "representative_name"),
        ({**CONSENT, "representative_name": "x" * 201}, 422, "representative_name"),
        ({**CONSENT, "patient_video": "maybe"}, 422, "patient_video"),
        ({**CONSENT, "surprise": 1}, 422, "surprise"),
        ({"purpose": "teaching"}, 422, "patient_video"),
        ({**CONSENT, "consented_at": "2999-01-01T00:00:00Z"}, 409, "consent cannot be given in the future"),
    ]
    for body, status, named in cases:
        r = await c.post(url, json=body, headers=h["gp_a"])
        assert r.status_code == status, (body, r.text)
        assert named in r.text, (body, r.text)
    r = await c.post("/api/cases/0/recording-consents", json=CONSENT, headers=h["gp_a"])
    assert r.status_code == 422
    assert (await c.get(url, headers=h["gp_a"])).json() == []  # nothing was saved


async def test_recordings_are_for_the_case_clinicians_and_deleted_by_admins(world, tmp_path) -> None:
    c, h, case = world.client, world.headers, world.case_ids["pat_a"]
    r = await c.post(f"/api/cases/{case}/recording-consents", json=CONSENT, headers=h["gp_a"])
    store = world.services.store
    files = RecordingFiles(world.services.settings.recordings_dir)
    gp_a = Actor(r.json()["recorded_by"], Role.gp)
    record = open_recording(store, files, gp_a, case, RecordingSource.stream, has_audio=True)
    assert not record.has_audio  # the consent does not cover sound: the row never claims it
    files.path(record.video_file).write_bytes(b"\0" * 1000)
    files.path(record.findings_file).write_bytes(b"")
    r = await c.delete(f"/api/recordings/{record.id}", headers=h["admin"])
    assert r.status_code == 403 and r.json()["detail"] == "this recording is still running: stop it first"
    close_recording(store, record.id, RecordingEnd(10, 0.3, 1000, None, gp_a.user_id))

    r = await c.get(f"/api/cases/{case}/recordings", headers=h["pat_a"])
    assert r.status_code == 403
    r = await c.get(f"/api/recordings/{record.id}/video", headers=h["gp_b"])
    assert r.status_code == 404 and r.json()["detail"] == f"no recording {record.id}"
    r = await c.get(f"/api/recordings/{record.id}/video", headers={**h["gp_a"], "Range": "bytes=900-"})
    assert r.status_code == 206 and len(r.content) == 100
    r = await c.get(f"/api/recordings/{record.id}/video", headers={**h["gp_a"], "Range": "bytes=5000-"})
    assert r.status_code == 416
    r = await c.delete(f"/api/recordings/{record.id}", headers=h["gp_a"])
    assert r.status_code == 403
    r = await c.delete(f"/api/recordings/{record.id}", headers=h["admin"])
    assert r.status_code == 204
    assert not files.path(record.video_file).exists() and not files.path(record.findings_file).exists()
    r = await c.delete(f"/api/recordings/{record.id}", headers=h["admin"])
    assert r.status_code == 404
