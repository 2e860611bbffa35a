"""`scopecast bench streams` runs the shipped model through the real hub in both modes and reports what it measured."""

from __future__ import annotations

import json

import pytest

from scopecast.cli import main


def test_bench_streams_measures_both_modes_with_the_shipped_model(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from perception.builtin import shipped_models

    if "polyp" not in shipped_models():
        pytest.skip("the shipped polyp model is not present")
    argv = ["bench", "streams", "--streams", "2", "--seconds", "1.5", "--warmup", "1", "--threads", "1"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench-streams.json").read_text())
    runs = {r["mode"]: r for r in report["runs"]}
    assert set(runs) == {"batched", "per-stream"}
    for run in runs.values():
        assert run["streams"] == 2 and len(run["findings_per_s"]) == 2
        assert run["findings_per_s_min"] > 0, f"a stream got no findings in {run['mode']} mode"
        assert run["model_frames_per_s"] == pytest.approx(sum(run["findings_per_s"]), abs=0.05)
    assert runs["per-stream"]["mean_batch_size"] == 1.0
    assert runs["batched"]["mean_batch_size"] >= 1.0
    out = capsys.readouterr().out
    assert "model frames/s, batched over per-stream" in out and "2 stream(s):" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--streams", "two"], "--streams must be a comma list of whole numbers"),
        (["--streams", "0,4"], "--streams must list counts from 1 to 64"),
        (["--modes", "turbo"], "unknown mode turbo"),
        (["--model", "nosuch"], "no shipped model named 'nosuch'"),
        (["--batch-budget-ms", "0"], "--batch-budget-ms must be positive"),
    ],
)
def test_bench_streams_refuses_bad_arguments_with_the_reason(args, message, capsys):
    assert main(["bench", "streams", *args]) == 2
    assert message in capsys.readouterr().out
