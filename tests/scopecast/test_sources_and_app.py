"""Server-side sources, the monitor path, the operational endpoints and the CLI's errors."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from scopecast.app import create_app
from scopecast.assets import LAPAROSCOPY_CLIP, SAMPLE_CLIP
from scopecast.cli import main
from scopecast.settings import Settings
from stream.sources import SourceError, SourceSpec, probe_source
from stream.testing import client
from tests.helpers.fakes import BoxModel, keyword_vlm, registry_with
from tests.helpers.servers import running_server
from tests.helpers.stream_access import CLINICIAN_HEADERS, CLINICIAN_TOKEN, fixed_token_access


def test_bundled_clips_probe():
    assert probe_source(SourceSpec(str(SAMPLE_CLIP)))[:2] == (768, 576)
    assert probe_source(SourceSpec(str(LAPAROSCOPY_CLIP)))[:2] == (1280, 720)


def test_source_labels_never_show_credentials_or_server_paths():
    assert (
        SourceSpec("rtsp://nurse:secret@10.0.0.5:554/theatre2?token=abc").display_name == "rtsp://10.0.0.5:554/theatre2"
    )
    assert SourceSpec("/srv/cases/patient-1234/endo.mp4").display_name == "endo.mp4"


def test_missing_and_undecodable_sources_are_named(tmp_path):
    with pytest.raises(SourceError, match="source file not found: /no/such/clip.mp4"):
        probe_source(SourceSpec("/no/such/clip.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01 definitely not a video " * 200)
    with pytest.raises(SourceError, match=f"(cannot open|cannot decode|no video).*{junk.name}|{junk.name}.*"):
        probe_source(SourceSpec(str(junk)))


def test_cli_refuses_a_bad_source_with_a_message(capsys, tmp_path):
    assert main(["serve", "--source", "endo=/no/such/clip.mp4", "--port", "18999"]) == 2
    err = capsys.readouterr().err
    assert "source 'endo': source file not found: /no/such/clip.mp4" in err


def test_cli_refuses_bad_settings(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    assert "invalid setting port" in capsys.readouterr().err


def test_ice_servers_are_parsed_and_bad_ones_named():
    from scopecast.settings import parse_ice_server

    assert parse_ice_server("stun:stun.example.org:3478") == {"urls": "stun:stun.example.org:3478"}
    assert parse_ice_server("turn:alice:s3cret@turn.example.org:3478") == {
        "urls": "turn:turn.example.org:3478",
        "username": "alice",
        "credential": "s3cret",
    }
    with pytest.raises(Exception, match="'http://x' must look like"):
        Settings(ice_servers=["http://x"])
    with pytest.raises(Exception, match="user:password"):
        Settings(ice_servers=["turn:nopassword@host:3478"])


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SCOPECAST_MAX_SESSIONS", "5")
    monkeypatch.setenv("SCOPECAST_VIDEO_CODEC", "H264")
    settings = Settings()
    assert settings.max_sessions == 5 and settings.video_codec == "H264"
    monkeypatch.setenv("SCOPECAST_VIDEO_CODEC", "MPEG2")
    with pytest.raises(Exception, match="video_codec"):
        Settings()


def write_clip(path, width: int = 320, height: int = 240, fps: int = 25, seconds: float = 2.0):
    """A small H.264 file, so fan-out tests measure the server, not the cost of decoding 720p."""
    import av

    from stream.testing.framestamp import moving_pattern

    pattern = moving_pattern(width, height)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(fps * seconds)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pattern(i), format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


async def test_monitors_share_one_inference_per_source_and_endpoints_report_it(tmp_path):
    model = BoxModel()
    clip = write_clip(tmp_path / "clip.mp4")
    app = create_app(
        Settings(sources=[f"lap={clip}"], model="box"),
        registry_with(box=model),
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )
    async with running_server(app) as addr:
        async with httpx.AsyncClient(base_url=f"http://{addr}", headers=CLINICIAN_HEADERS) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = (await http.get("/readyz")).json()
            assert ready["ready"] is True and "lap" in ready["streams"]
            streams = (await http.get("/api/streams")).json()
            assert [s["stream_id"] for s in streams] == ["lap"] and streams[0]["size"] == [320, 240]
            assert (await http.get("/api/streams/nope")).status_code == 404
            schema = (await http.get("/api/schema/events")).json()
            assert "FindingsEvent" in str(schema)
            assert (await http.get("/monitor")).status_code == 200
            assert (await http.get("/api/ice-servers")).json() == []

            viewers = [await client.watch(f"ws://{addr}/ws", "lap", token=CLINICIAN_TOKEN) for _ in range(2)]
            try:
                await asyncio.gather(*(v.track.recv() for v in viewers))
                frames_before = app.state.hub.get("lap").pipeline.frames.seq
                calls_before = model.calls
                start = time.monotonic()
                counts = await asyncio.gather(*(_count_frames(v.track, 3.0) for v in viewers))
                elapsed = time.monotonic() - start
                source_frames = app.state.hub.get("lap").pipeline.frames.seq - frames_before
                calls = model.calls - calls_before
            finally:
                for v in viewers:
                    await v.close()
            metrics = (await http.get("/metrics")).text
    assert all(c >= 0.6 * 25 * elapsed for c in counts), counts
    assert calls <= source_frames + 2, f"{calls} model calls for {source_frames} source frames and 2 viewers"
    assert 'scopecast_frames_in_total{stream="lap"}' in metrics
    assert "scopecast_inference_seconds_bucket" in metrics
    assert 'scopecast_sessions{role="watcher"}' in metrics


async def _count_frames(track, seconds: float) -> int:
    n = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.wait_for(track.recv(), 5)
        n += 1
    return n
