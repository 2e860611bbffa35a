"""Triton: model repository files, and the gRPC runtime against a real Triton server on loopback (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_testutil import free_ports, structured_frames

from perception import ModelError
from perception.runtimes import select_runtime
from perception.runtimes.triton_repo import write_model_repository
from perception.segmentation_model import SegmentationModel


def test_model_repository_layout_and_config(tiny_onnx, tmp_path):
    model_dir = write_model_repository(
        tiny_onnx, tmp_path / "repo", "polyp", max_batch=8, instance_kind="gpu", tensorrt_fp16=True
    )
    assert model_dir == tmp_path / "repo" / "polyp"
    assert (model_dir / "1" / "model.onnx").read_bytes() == tiny_onnx.read_bytes()
    assert (model_dir / "scopecast.json").is_file()
    text = (model_dir / "config.pbtxt").read_text()
    mc = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    from google.protobuf import text_format

    cfg = text_format.Parse(text, mc.ModelConfig())  # valid Triton model config protobuf text
    assert cfg.name == "polyp" and cfg.backend == "onnxruntime" and cfg.max_batch_size == 8
    assert cfg.input[0].name == "image" and list(cfg.input[0].dims) == [3, 64, 64]
    assert cfg.input[0].data_type == mc.TYPE_FP32
    assert cfg.output[0].name == "logits" and list(cfg.output[0].dims) == [1, 64, 64]
    assert list(cfg.dynamic_batching.preferred_batch_size) == [1, 2, 4, 8]
    assert cfg.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert cfg.optimization.execution_accelerators.gpu_execution_accelerator[0].name == "tensorrt"


def test_model_repository_rejects_bad_input(tmp_path):
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1, 32, 32])
    g = helper.make_graph([helper.make_node("ReduceMean", ["image"], ["logits"], axes=[1], keepdims=1)], "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    save(m, str(tmp_path / "fixed.onnx"))
    with pytest.raises(ModelError, match="dynamic batch"):
        write_model_repository(tmp_path / "fixed.onnx", tmp_path / "repo")
    with pytest.raises(ModelError, match="not found"):
        write_model_repository(tmp_path / "absent.onnx", tmp_path / "repo")


def test_unreachable_server_names_the_address(tiny_onnx):
    pytest.importorskip("tritonclient.grpc")
    port = free_ports(1)[0]  # nothing listens there
    with pytest.raises(ModelError, match=rf"cannot reach Triton at 127\.0\.0\.1:{port}: "):
        select_runtime("triton", tiny_onnx, options={"triton": {"url": f"127.0.0.1:{port}", "connect_timeout_s": 1}})


def test_triton_logits_match_onnxruntime(triton_server, tiny_onnx):
    print(f"Triton server up in {triton_server.startup_s:.1f} s")
    rt = select_runtime("triton", tiny_onnx, options={"triton": {"url": triton_server.url, "model_name": "tiny"}})
    cpu = select_runtime("cpu", tiny_onnx)
    try:
        assert rt.name == "triton" and rt.input_size == (64, 64) and rt.max_batch == 4
        x = np.random.default_rng(0).normal(size=(6, 3, 64, 64)).astype(np.float32)  # 6 > max_batch: split
        got, ref = rt.run(x), cpu.run(x)
        assert got.shape == ref.shape == (6, 64, 64)
        np.testing.assert_allclose(got, ref, atol=1e-5)
        with pytest.raises(ModelError, match="N x 3 x 64 x 64"):
            rt.run(np.zeros((1, 3, 32, 32), np.float32))
    finally:
        rt.close()
        cpu.close()


def test_triton_findings_match_local_model(triton_server, tiny_onnx):
    remote = SegmentationModel(
        tiny_onnx, runtime="triton", runtime_options={"triton": {"url": triton_server.url, "model_name": "tiny"}}
    )
    local = SegmentationModel(tiny_onnx)
    assert remote.runtime_name == "triton" and remote.providers == ["triton"]
    frames = structured_frames(3, 640, 480, seed=3)
    got, ref = remote.predict_batch(frames), local.predict_batch(frames)
    assert sum(len(r.objects) for r in ref) > 0
    for g, r in zip(got, ref):
        assert [(o.box, o.track_id, o.label, o.area_px) for o in g.objects] == [
            (o.box, o.track_id, o.label, o.area_px) for o in r.objects
        ]
        assert [o.score for o in g.objects] == pytest.approx([o.score for o in r.objects], abs=1e-5)
    remote.close()


def test_triton_wrong_model_and_mismatched_onnx(triton_server, tiny_onnx_96):
    with pytest.raises(ModelError, match="'nope' is not ready"):
        select_runtime("triton", options={"triton": {"url": triton_server.url, "model_name": "nope"}})
    with pytest.raises(ModelError, match="does not match the local ONNX"):
        select_runtime("triton", tiny_onnx_96, options={"triton": {"url": triton_server.url, "model_name": "tiny"}})
