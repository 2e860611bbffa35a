"""GPU parts: telemetry degrades cleanly without a GPU; TensorRT engine tests run only on a CUDA machine."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from runtime_testutil import structured_frames

from perception import ModelError
from perception.runtimes import gpu_telemetry, select_runtime
from perception.runtimes.tensorrt_rt import BuildProgress, engine_key


def _has_gpu_and_trt() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch not installed"
    if not torch.cuda.is_available():
        return "no CUDA device"
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt not installed (pip install 'scopecast[gpu]')"
    return None


needs_trt = pytest.mark.skipif(_has_gpu_and_trt() is not None, reason=f"TensorRT test: {_has_gpu_and_trt()}")


# -- telemetry ------------------------------------------------------------------------------------


def test_telemetry_never_raises_and_is_empty_without_gpu():
    snap = gpu_telemetry.gpu_snapshot()
    assert isinstance(snap, list)
    if not snap:
        assert gpu_telemetry.gpu_stats(0) is None
        assert isinstance(gpu_telemetry.unavailable_reason(), str)
    else:  # a GPU machine
        s = snap[0]
        assert s.name and (s.memory_total_mb is None or s.memory_total_mb > 0)


def test_telemetry_without_pynvml_or_driver(monkeypatch):
    for broken in (None, "init fails"):
        monkeypatch.setattr(gpu_telemetry, "_state", {"init": None, "reason": None})
        if broken is None:
            monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
        else:
            fake = types.ModuleType("pynvml")

            def nvml_init():
                raise RuntimeError("NVML Shared Library Not Found")

            fake.nvmlInit = nvml_init
            monkeypatch.setitem(sys.modules, "pynvml", fake)
        assert gpu_telemetry.gpu_snapshot() == []
        assert gpu_telemetry.gpu_stats() is None
        assert gpu_telemetry.unavailable_reason()


def test_telemetry_with_a_fake_gpu(monkeypatch):
    fake = types.ModuleType("pynvml")
    fake.NVML_TEMPERATURE_GPU = 0
    fake.nvmlInit = lambda: None
    fake.nvmlDeviceGetCount = lambda: 1
    fake.nvmlDeviceGetHandleByIndex = lambda i: object()
    fake.nvmlDeviceGetName = lambda h: b"NVIDIA Fake"
    fake.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=37, memory=10)
    fake.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=2 << 30, total=16 << 30, free=14 << 30)

    def no_temp(h, sensor):
        raise RuntimeError("not supported")

    fake.nvmlDeviceGetTemperature = no_temp
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(gpu_telemetry, "_state", {"init": None, "reason": None})
    s = gpu_telemetry.gpu_stats(0)
    assert s is not None and s.name == "NVIDIA Fake" and s.utilisation_pct == 37.0
    assert s.memory_used_mb == 2048 and s.memory_total_mb == 16384 and s.temperature_c is None
    assert s.as_dict()["index"] == 0


# -- TensorRT pieces that need no GPU ---------------------------------------------------------------


def test_engine_key_changes_with_every_input():
    base = ("a" * 64, "NVIDIA H100 sm90", "10.13.0", "fp16", 8, (256, 256))
    keys = {engine_key(*base)}
    for i, other in enumerate(["b" * 64, "NVIDIA L4 sm89", "10.14.1", "fp32", 4, (320, 320)]):
        args = list(base)
        args[i] = other
        keys.add(engine_key(*args))
    assert len(keys) == 7 and engine_key(*base) == engine_key(*base)


def test_build_progress_lines():
    lines = []
    p = BuildProgress(lines.append, every_s=0.0)
    p.start("Building engine", None, 3)
    p.start("Tactic timing", "Building engine", 2)
    assert p.step("Tactic timing", 0) is True
    p.finish("Tactic timing")
    p.finish("Building engine")
    assert lines[0] == "Building engine: started (3 steps)"
    assert lines[1].startswith("  Tactic timing")
    assert any("1/2" in line for line in lines) and lines[-1].startswith("Building engine: done")


# -- TensorRT on a GPU ----------------------------------------------------------------------------


@pytest.mark.gpu
@needs_trt
def test_tensorrt_engine_matches_onnxruntime_and_is_cached(tiny_onnx, tmp_path):
    from perception.runtimes.tensorrt_rt import TensorRTRuntime

    progress = []
    rt = TensorRTRuntime(tiny_onnx, precision="fp16", max_batch=4, cache_dir=tmp_path, progress=progress.append)
    assert rt.built_now and rt.engine_path.is_file() and rt.timing_cache_path.is_file()
    assert progress, "the build reported no progress"
    cpu = select_runtime("cpu", tiny_onnx)
    x = np.random.default_rng(0).normal(size=(6, 3, 64, 64)).astype(np.float32)  # 6 > max_batch
    got, ref = rt.run(x), cpu.run(x)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 0.05 * (np.abs(ref).max() + 1)  # FP16
    assert ((got >= 0) != (ref >= 0)).mean() < 0.01
    again = TensorRTRuntime(tiny_onnx, precision="fp16", max_batch=4, cache_dir=tmp_path)
    assert not again.built_now and again.engine_path == rt.engine_path
    other = TensorRTRuntime(tiny_onnx, precision="fp32", max_batch=4, cache_dir=tmp_path)
    assert other.engine_path != rt.engine_path
    np.testing.assert_allclose(other.run(x), ref, atol=1e-2)


@pytest.mark.gpu
@needs_trt
def test_tensorrt_model_with_gpu_preprocessing(tiny_onnx, tmp_path):
    from perception.segmentation_model import SegmentationModel

    trt_model = SegmentationModel(
        tiny_onnx, runtime="tensorrt", runtime_options={"tensorrt": {"cache_dir": str(tmp_path), "max_batch": 4}}
    )
    cpu_model = SegmentationModel(tiny_onnx)
    assert trt_model.runtime_name.startswith("tensorrt")
    frames = structured_frames(3, 512, 512, seed=5)  # integer factor: GPU and CPU preprocessing agree
    for a, b in zip(trt_model.predict_batch(frames), cpu_model.predict_batch(frames)):
        assert abs(len(a.objects) - len(b.objects)) <= 1


@pytest.mark.gpu
@needs_trt
def test_tensorrt_build_failure_is_model_error(tmp_path):
    from onnx import TensorProto, helper, save

    from perception.runtimes.tensorrt_rt import TensorRTRuntime

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, 32, 32])
    node = helper.make_node("NoSuchOp", ["image"], ["logits"], domain="bogus.domain")
    g = helper.make_graph([node], "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("bogus.domain", 1)])
    m.ir_version = 8
    save(m, str(tmp_path / "bogus.onnx"))
    with pytest.raises(ModelError, match="bogus.onnx"):
        TensorRTRuntime(tmp_path / "bogus.onnx", cache_dir=tmp_path)
