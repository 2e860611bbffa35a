"""``perception.export --triton`` and the runtime benchmark CLI, on a tiny net."""

from __future__ import annotations

import json

import numpy as np
import pytest
from runtime_testutil import TINY_ARCH


def test_export_cli_writes_triton_repository(tmp_path):
    import torch

    from perception import export
    from perception.nets import build_net

    torch.manual_seed(0)
    net = build_net(
        "liteunet", **{k: tuple(v) if isinstance(v, list) else v for k, v in TINY_ARCH.items() if k != "arch"}
    )
    ckpt = tmp_path / "best.pt"
    torch.save(
        {
            "arch": dict(TINY_ARCH),
            "model": net.state_dict(),
            "epoch": 1,
            "config": {"task": "toytask", "input_size": 64},
        },
        ckpt,
    )
    rc = export.main(
        [
            "--checkpoint",
            str(ckpt),
            "--name",
            "toy",
            "--out-dir",
            str(tmp_path / "w"),
            "--no-eval",
            "--triton",
            str(tmp_path / "repo"),
            "--triton-max-batch",
            "4",
        ]
    )
    assert rc == 0
    assert (tmp_path / "repo" / "toy" / "1" / "model.onnx").read_bytes() == (tmp_path / "w" / "toy.onnx").read_bytes()
    assert "max_batch_size: 4" in (tmp_path / "repo" / "toy" / "config.pbtxt").read_text()
    # every export carries the retrieval embedding (perception.export_embedding): the LiteUNet's 1/16 map, 16 channels
    meta = json.loads((tmp_path / "w" / "toy.json").read_text())
    assert meta["embedding"]["output"] == "embedding" and meta["embedding"]["dim"] == TINY_ARCH["enc"][3]
    # default BatchNorm statistics fold into identical biases, which the exporter de-duplicates:
    # net_from_onnx (and so the torch runtime) must still rebuild the net
    from perception.runtimes import select_runtime

    x = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    a = select_runtime("cpu", tmp_path / "w" / "toy.onnx").run(x)
    b = select_runtime("torch", tmp_path / "w" / "toy.onnx").run(x)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_bench_cli_prints_rows(tiny_onnx, tmp_path, capsys):
    from perception.bench import runtimes as bench

    out = tmp_path / "rows.json"
    rc = bench.main(
        [
            "--model",
            str(tiny_onnx),
            "--runtimes",
            "cpu,torch,tensorrt",
            "--batches",
            "1,2",
            "--sizes",
            "320x240,640x360",
            "--iters",
            "2",
            "--warmup",
            "1",
            "--markdown",
            "--json-out",
            str(out),
            "--video",
            str(tmp_path / "none.mp4"),
        ]
    )
    assert rc == 0
    rows = json.loads(out.read_text())
    kinds = {r["runtime"] for r in rows}
    assert {"onnxruntime-cpu", "torch-cpu"} <= kinds
    assert len([r for r in rows if r["runtime"] in ("onnxruntime-cpu", "torch-cpu")]) == 8
    for r in rows:
        assert r["p99_ms"] >= r["p50_ms"] > 0 and r["fps"] > 0 and r["peak_rss_mb"] > 0
    text = capsys.readouterr().out
    assert "| runtime | frame | batch |" in text
    if "tensorrt-fp16" not in kinds:
        assert "# tensorrt: not available here" in text


@pytest.mark.parametrize("n", [1, 3])
def test_synthetic_frames(n):
    from perception.bench.runtimes import synthetic_frames

    frames = synthetic_frames(n, 64, 48)
    assert len(frames) == n and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8


def test_bench_frames_are_the_models_own_content(tiny_onnx, tmp_path):
    """The benchmark feeds a model what it serves: its validation images, so its findings' cost is counted."""
    from perception import datasets
    from perception.bench.runtimes import bench_frames
    from perception.builtin import shipped_models
    from perception.segmentation_model import SegmentationModel

    tiny = SegmentationModel(tiny_onnx)  # names no training task: the fallback video, here absent, then synthetic
    frames, source = bench_frames(tiny, 2, 64, 48, None, tmp_path / "none.mp4")
    assert source == "synthetic" and len(frames) == 2 and frames[0].shape == (48, 64, 3)
    polyp = shipped_models().get("polyp")
    if polyp is None or not datasets.data_root().is_dir():
        pytest.skip("shipped polyp model or shared data absent")
    model = SegmentationModel(polyp)
    frames, source = bench_frames(model, 3, 64, 48, None, None)
    assert source == "validation images" and [f.shape for f in frames] == [(48, 64, 3)] * 3
    assert len({f.tobytes() for f in frames}) == 3
