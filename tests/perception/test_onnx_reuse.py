"""A shipped ONNX as a starting point: fine-tuning from it (`train --init-from X.onnx`), re-exporting it
(`export --checkpoint X.onnx`, e.g. with test-time flips), and the sources that are refused with a reason."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")
ort = pytest.importorskip("onnxruntime")

SMALL = {"enc": (8, 8, 16, 16, 16), "dec": (16, 8, 8, 8), "depth": (1, 1, 1, 1), "expand": 2}
SIZE = 64


def _small_net(seed: int = 0):
    """A LiteUNet whose BatchNorms hold non-trivial statistics, so that a fold that lost them would show."""
    from perception.nets import LiteUNet

    torch.manual_seed(seed)
    net = LiteUNet(**SMALL)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return net.eval()


def _exported(tmp_path, net, name: str = "small.onnx"):
    from perception.export import export_onnx

    path = tmp_path / name
    export_onnx(net, path, (SIZE, SIZE))
    return path


def _probe() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(2, 3, SIZE, SIZE)).astype(np.float32)


def test_onnx_weights_load_with_batchnorms_kept_and_compute_what_the_graph_computes(tmp_path):
    from perception.net_loading import freeze_batchnorm, load_onnx_weights_unfolded
    from perception.nets import LiteUNet

    path = _exported(tmp_path, _small_net())
    fresh = LiteUNet(**SMALL)
    loaded = load_onnx_weights_unfolded(fresh, path)
    assert loaded == sum(isinstance(m, torch.nn.Conv2d) for m in fresh.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in fresh.modules())  # same state-dict layout as training
    x = _probe()
    graph = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    with torch.no_grad():
        assert np.abs(fresh.eval()(torch.from_numpy(x)).numpy() - graph).max() < 1e-4
        # training mode with frozen BatchNorms: the same function (batch statistics would undo the fold)
        fresh.train()
        freeze_batchnorm(fresh)
        assert np.abs(fresh(torch.from_numpy(x)).numpy() - graph).max() < 1e-4


def test_onnx_of_another_architecture_is_refused_with_the_reason(tmp_path):
    from perception.net_loading import CheckpointError, load_onnx_weights_unfolded
    from perception.nets import LiteUNet

    path = _exported(tmp_path, _small_net())
    with pytest.raises(CheckpointError, match="Conv nodes but the net has|does not fit"):
        load_onnx_weights_unfolded(LiteUNet(), path)  # the default, larger LiteUNet
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a graph")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_onnx_weights_unfolded(LiteUNet(**SMALL), junk)


def test_quantised_graph_is_refused_naming_the_float_model(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from perception.net_loading import CheckpointError, load_onnx_weights_unfolded
    from perception.nets import LiteUNet

    weight = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.int8), "w_q")
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "w_scale")
    zero = numpy_helper.from_array(np.array(0, np.int8), "w_zero")
    graph = helper.make_graph(
        [
            helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"]),
            helper.make_node("Conv", ["image", "w"], ["logits"], name="conv0"),
        ],
        "int8",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        initializer=[weight, scale, zero],
    )
    path = tmp_path / "int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(CheckpointError, match="quantised graph"):
        load_onnx_weights_unfolded(LiteUNet(**SMALL), path)


def test_training_init_from_an_onnx_that_does_not_fit_says_so(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from perception import training

    sample = training.datasets.Sample("test", "0001", Path("0001.jpg"), Path("0001.png"))
    monkeypatch.setattr(training.datasets, "task_split", lambda task, seed: ([sample], [sample]))
    monkeypatch.setattr(training.datasets, "load_resized", lambda samples, size, progress=False: (None, None))
    path = _exported(tmp_path, _small_net())
    code = training.main(
        ["--task", "wound", "--init-from", str(path), "--epochs", "1", "--runs-dir", str(tmp_path / "runs")]
    )
    assert code == 2
    assert f"--init-from {path}" in capsys.readouterr().err


def test_flip_averaging_averages_the_image_and_its_mirrors():
    from perception.nets import FlipAveraged

    net = _small_net()
    x = torch.from_numpy(_probe())
    with torch.no_grad():
        expected = (net(x) + net(x.flip(3)).flip(3) + net(x.flip(2)).flip(2)) / 3
        assert torch.allclose(FlipAveraged(net, ("h", "v"))(x), expected, atol=1e-6)
        assert torch.allclose(FlipAveraged(net, ("h",))(x), (net(x) + net(x.flip(3)).flip(3)) / 2, atol=1e-6)
    for bad in ((), ("x",), ("h", "h")):
        with pytest.raises(ValueError, match="flips must be"):
            FlipAveraged(net, bad)


def _with_export_metadata(path, **extra) -> None:
    from perception.export import embed_metadata

    meta = {
        "name": "small",
        "version": "1.0",
        "arch": {"arch": "liteunet", **{k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.items()}},
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "training": {"task": "wound", "split_seed": 7, "epochs": 3, "input_size": SIZE, "best_epoch": 2},
        **extra,
    }
    embed_metadata(path, meta)


def test_an_exported_onnx_is_rebuilt_as_a_checkpoint_for_re_export(tmp_path):
    from perception.net_loading import load_exported_net
    from perception.runtimes.base import file_sha256

    path = _exported(tmp_path, _small_net())
    _with_export_metadata(path)
    net, checkpoint = load_exported_net(path)
    assert checkpoint["config"]["task"] == "wound" and checkpoint["config"]["split_seed"] == 7
    assert checkpoint["config"]["input_size"] == SIZE and checkpoint["epoch"] == 2
    assert checkpoint["mean"] == [0.5, 0.5, 0.5]
    assert checkpoint["derived_from"] == {"name": "small", "version": "1.0", "sha256": file_sha256(path)}
    x = _probe()
    graph = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    with torch.no_grad():
        assert np.abs(net(torch.from_numpy(x)).numpy() - graph).max() < 1e-4


def test_re_export_from_an_onnx_without_metadata_or_from_an_int8_graph_is_refused(tmp_path, capsys):
    from perception.export import main
    from perception.net_loading import CheckpointError, load_exported_net

    bare = _exported(tmp_path, _small_net(), "bare.onnx")
    with pytest.raises(CheckpointError, match="no scopecast export metadata"):
        load_exported_net(bare)
    int8 = _exported(tmp_path, _small_net(), "int8.onnx")
    _with_export_metadata(int8, quantization={"weights": "int8"}, derived_from={"name": "small-float"})
    with pytest.raises(CheckpointError, match="re-export the float model it was made from \\(small-float\\)"):
        load_exported_net(int8)
    out = tmp_path / "out"
    assert main(["--checkpoint", str(bare), "--name", "x", "--out-dir", str(out), "--no-eval"]) == 2
    assert "export failed: " in capsys.readouterr().err
    assert not (out / "x.onnx").exists()
