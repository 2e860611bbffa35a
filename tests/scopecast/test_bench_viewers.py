"""`scopecast bench viewers`: its camera is encoded once and still carries readable stamps, and a short run through
the real server, directly and through a real Janus, counts frames at every viewer."""

from __future__ import annotations

import json
import shutil

import av
import pytest

from scopecast.bench.viewers import latencies_ms
from scopecast.cli import main
from stream.testing.framestamp import PreEncodedStampedTrack, read_stamp


def test_the_pre_encoded_camera_decodes_to_its_stamps_and_starts_on_keyframes():
    track = PreEncodedStampedTrack.encode(640, 360, fps=30, seconds=2.5, keyframe_every=30)
    assert len(track.packets) == 75
    assert {0, 30, 60} <= track.keyframes
    decoder = av.CodecContext.create("libvpx", "r")
    stamps = [
        read_stamp(frame.to_ndarray(format="gray")) for p in track.packets for frame in decoder.decode(av.Packet(p))
    ]
    assert stamps == list(range(75))


def test_saved_packets_load_back_whole_and_a_foreign_file_is_refused(tmp_path):
    track = PreEncodedStampedTrack.encode(640, 360, fps=30, seconds=1, keyframe_every=10)
    track.save(tmp_path / "camera.packets")
    loaded = PreEncodedStampedTrack.load(tmp_path / "camera.packets")
    assert loaded.packets == track.packets and loaded.keyframes == track.keyframes and loaded.fps == 30
    (tmp_path / "other").write_bytes((tmp_path / "camera.packets").read_bytes() + b"tail")
    with pytest.raises(ValueError, match="not a file written by PreEncodedStampedTrack.save"):
        PreEncodedStampedTrack.load(tmp_path / "other")


def test_latency_counts_from_the_last_send_of_a_stamp_before_its_arrival():
    sends = [[0, 10.0], [1, 10.1], [0, 20.0]]  # stamp 0 sent again by the next loop
    seen = [(0, 10.25), (1, 10.3), (0, 20.05), (2, 21.0)]  # stamp 2 was never sent: not counted
    assert latencies_ms(seen, sends) == pytest.approx([250.0, 200.0, 50.0])


async def test_the_camera_paces_its_packets_and_loops_with_increasing_timestamps():
    track = PreEncodedStampedTrack.encode(160, 120, fps=50, seconds=0.1)  # 5 packets
    packets = [await track.recv() for _ in range(12)]
    pts = [p.pts for p in packets]
    assert pts == sorted(pts) and len(set(pts)) == 12  # the loop goes on in time, never back to 0
    assert set(track.sent_at) == set(range(5))
    assert bytes(packets[5]) == bytes(packets[0])  # the second loop starts again on the first (key) frame


@pytest.mark.skipif(shutil.which("janus") is None, reason="Janus is not installed (scripts/install.sh installs it)")
def test_a_short_run_counts_frames_at_every_viewer_directly_and_through_janus(tmp_path, capsys):
    argv = ["bench", "viewers", "--viewers", "2", "--resolution", "640x360", "--seconds", "2", "--warmup", "1.5"]
    assert main([*argv, "--sample", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench-viewers.json").read_text())
    runs = {r["path"]: r for r in report["runs"]}
    assert set(runs) == {"direct", "janus"}
    for run in runs.values():
        assert run["connected"] == 2 and not run["errors"], run
        assert run["fps_min"] > 5, f"a viewer counted almost no frames on the {run['path']} path: {run}"
        assert run["scopecast_cpu_pct"] > 0 and run["bench_cpu_pct"] > 0
        assert run["latency_ms_p50"] is not None and 0 < run["latency_ms_p50"] < 5000
    assert runs["direct"]["sample_viewers"] == runs["janus"]["sample_viewers"] == 1  # the other only counts RTP
    assert runs["janus"]["janus_cpu_pct"] is not None and runs["direct"]["janus_cpu_pct"] is None
    assert "bench CPU %" in capsys.readouterr().out
