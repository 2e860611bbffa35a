"""Choosing a runtime: automatic fallback with reasons, explicit kinds, and bad input -> ModelError."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from onnx import TensorProto

from perception import ModelError
from perception.runtimes import Runtime, RuntimeUnavailable, select, select_runtime
from perception.segmentation_model import SegmentationModel


def test_auto_on_this_machine_is_onnxruntime_cpu_and_says_why(tiny_onnx, caplog):
    seen = []
    with caplog.at_level(logging.INFO, logger="perception.runtimes"):
        rt = select_runtime("auto", tiny_onnx, on_skip=lambda k, why: seen.append((k, why)))
    assert isinstance(rt, Runtime)
    if [k for k, _ in seen] != ["tensorrt", "cuda"]:
        pytest.skip(f"this machine offers a GPU runtime: {seen}")
    assert rt.name == "onnxruntime-cpu"
    reasons = dict(seen)
    assert "tensorrt" in reasons["tensorrt"] and (
        "not installed" in reasons["tensorrt"] or "CUDA" in reasons["tensorrt"]
    )
    assert "CUDA" in reasons["cuda"]
    assert rt.skipped == tuple(f"{k}: {why}" for k, why in seen)
    assert "runtime tensorrt skipped" in caplog.text and "runtime selected: onnxruntime-cpu" in caplog.text


def test_auto_falls_back_when_a_faster_runtime_fails(tiny_onnx, monkeypatch, caplog):
    """A TensorRT that is present but fails to build (or any ModelError) is skipped with a warning."""
    monkeypatch.setattr(select, "_precheck", lambda kind: None)
    real_make = select._make

    def fake_make(kind, path, threads, options):
        if kind == "tensorrt":
            raise ModelError("TensorRT engine build failed for tiny.onnx: out of memory")
        if kind == "cuda":
            raise RuntimeUnavailable("onnxruntime CUDA provider did not start (no CUDA device)")
        return real_make(kind, path, threads, options)

    monkeypatch.setattr(select, "_make", fake_make)
    with caplog.at_level(logging.INFO, logger="perception.runtimes"):
        rt = select_runtime("auto", tiny_onnx)
    assert rt.name == "onnxruntime-cpu"
    assert rt.skipped[0].startswith("tensorrt: failed: TensorRT engine build failed")
    assert "no CUDA device" in rt.skipped[1]
    assert any(r.levelno == logging.WARNING and "tensorrt" in r.getMessage() for r in caplog.records)


def test_explicit_gpu_kinds_fail_clearly_without_gpu(tiny_onnx):
    try:
        import tensorrt  # noqa: F401

        has_trt = True
    except ImportError:
        has_trt = False
    import torch

    if has_trt and torch.cuda.is_available():
        pytest.skip("a GPU with TensorRT is present")
    with pytest.raises(ModelError, match=r"scopecast\[gpu\]|CUDA device") as err:
        select_runtime("tensorrt", tiny_onnx)
    assert isinstance(err.value, RuntimeUnavailable)
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ModelError, match="onnxruntime-gpu"):
            select_runtime("cuda", tiny_onnx)


@pytest.mark.parametrize("kind", ["auto", "cpu", "torch", "tensorrt"])
def test_missing_and_corrupt_models(kind, tmp_path, tiny_onnx):
    with pytest.raises(ModelError, match="absent.onnx"):
        select_runtime(kind, tmp_path / "absent.onnx")
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not an onnx file" * 30)
    with pytest.raises(ModelError, match="broken.onnx"):
        select_runtime(kind, bad)
    cut = tmp_path / "cut.onnx"
    data = tiny_onnx.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="cut.onnx"):
        select_runtime(kind, cut)


def test_unknown_kind_and_device(tiny_onnx):
    with pytest.raises(ModelError, match="unknown runtime 'tpu'"):
        select_runtime("tpu", tiny_onnx)
    with pytest.raises(ModelError, match="device"):
        select_runtime("onnxruntime", tiny_onnx, options={"onnxruntime": {"device": "tpu"}})
    with pytest.raises(ModelError, match="device"):
        select_runtime("torch", tiny_onnx, options={"torch": {"device": "tpu"}})


@pytest.mark.parametrize("kind", ["cpu", "torch"])
def test_batch_mismatch_raises_model_error(kind, tiny_onnx):
    rt = select_runtime(kind, tiny_onnx)
    with pytest.raises(ModelError, match="N x 3 x 64 x 64"):
        rt.run(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(ModelError, match="N x 3 x 64 x 64"):
        rt.run(np.zeros((3, 64, 64), np.float32))
    with pytest.raises(ModelError, match="float32"):
        rt.run(np.zeros((1, 3, 64, 64), np.float64))
    with pytest.raises(ModelError, match="numpy array"):
        rt.run([[0.0]])


def test_graph_input_mismatch_names_the_file(tmp_path):
    from tests.perception.perception_testutil import make_onnx

    for kwargs, match in [
        ({"channels": 1}, "N x 3 x H x W"),
        ({"n_inputs": 2}, "one image input"),
        ({"elem_type": TensorProto.UINT8}, "float32"),
    ]:
        path = make_onnx(tmp_path / f"bad{len(match)}.onnx", **kwargs)
        for kind in ("cpu", "torch"):
            with pytest.raises(ModelError, match=match) as err:
                select_runtime(kind, path)
            assert path.name in str(err.value)


def test_torch_runtime_needs_perception_export_metadata(tmp_path):
    from tests.perception.perception_testutil import TOY_META, make_onnx

    path = make_onnx(tmp_path / "toy.onnx", sidecar=TOY_META)
    with pytest.raises(ModelError, match="no 'arch'"):
        select_runtime("torch", path)


def test_model_accepts_runtime_kind_or_object(tiny_onnx):
    default = SegmentationModel(tiny_onnx)
    assert default.runtime_name == "onnxruntime-cpu"
    auto = SegmentationModel(tiny_onnx, runtime="auto")
    assert auto.runtime_name.startswith(("onnxruntime", "tensorrt"))
    rt = select_runtime("torch", tiny_onnx)
    given = SegmentationModel(tiny_onnx, runtime=rt)
    assert given.runtime_name == "torch-cpu" and given.providers == ["torch-cpu"]
    with pytest.raises(ModelError, match="runtime must be"):
        SegmentationModel(tiny_onnx, runtime=42)
    with pytest.raises(ModelError, match="unknown runtime"):
        SegmentationModel(tiny_onnx, runtime="tpu")
    given.close()
