"""Int8 quantisation (perception.quantize): what is quantised, what stays float, bad sources, and the shipped
int8 models against their float sources."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from perception_testutil import GATED_META, TOY_META, make_onnx, shipped  # noqa: E402

from perception.quantize import GATE_MEAN, GATE_PRECISION, QuantiseError, logits_nodes, main, quantise  # noqa: E402


def test_only_what_the_logits_need_is_marked_for_quantisation():
    model = onnx.load(str(shipped("polyp-accurate")))
    network = logits_nodes(model)
    by_name = {n.name: n for n in model.graph.node}
    assert all(by_name[n].op_type != "MatMul" for n in network), "the gate's Mahalanobis product is not the network's"
    gate_sub = next(n for n in model.graph.node if n.op_type == "Sub" and GATE_MEAN in n.input)
    assert gate_sub.name not in network
    assert {n.name for n in model.graph.node if n.op_type == "Conv"} <= network


@pytest.mark.parametrize("name", ["polyp", "wound"])
def test_shipped_int8_graph_keeps_the_gate_in_float(name):
    path = shipped(name)
    meta = json.loads(path.with_suffix(".json").read_text())
    if "quantization" not in meta:
        pytest.skip(f"{name} is not an int8 graph")
    model = onnx.load(str(path))
    embedded = json.loads({p.key: p.value for p in model.metadata_props}["scopecast"])
    assert "parity_max_abs_diff" not in embedded and "val_metrics" not in embedded, "the float source's figures"
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 50 and "MatMul" in ops
    inits = {i.name: i for i in model.graph.initializer}
    assert inits[GATE_PRECISION].data_type == onnx.TensorProto.FLOAT
    assert inits[GATE_MEAN].data_type == onnx.TensorProto.FLOAT
    producer = {o: n for n in model.graph.node for o in n.output}
    matmul = next(n for n in model.graph.node if n.op_type == "MatMul")
    assert all(producer.get(i) is None or producer[i].op_type != "DequantizeLinear" for i in matmul.input)


def test_source_without_metadata_is_named(tmp_path):
    src = make_onnx(tmp_path / "bare.onnx")
    with pytest.raises(QuantiseError, match="no 'scopecast' metadata"):
        quantise(src, "q", version="1", out_dir=tmp_path / "out")


def test_source_that_is_not_an_export_is_named(tmp_path):
    src = make_onnx(tmp_path / "toy.onnx", meta=TOY_META)  # has input_size but no training record
    with pytest.raises(QuantiseError, match="not a scopecast export"):
        quantise(src, "q", version="1", out_dir=tmp_path / "out")


def test_missing_or_corrupt_source_is_named(tmp_path, capsys):
    with pytest.raises(QuantiseError, match="not found"):
        quantise(tmp_path / "absent.onnx", "q", version="1", out_dir=tmp_path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a graph")
    assert main(["--source", str(junk), "--name", "q", "--version", "1", "--out-dir", str(tmp_path)]) == 2
    assert "not a readable ONNX graph" in capsys.readouterr().err


def test_quantising_into_the_source_is_refused(tmp_path):
    meta = {**GATED_META, "training": {"task": "polyp"}, "input_name": "image"}
    src = make_onnx(tmp_path / "m.onnx", meta=meta, gate=True)
    with pytest.raises(QuantiseError, match="the source itself"):
        quantise(src, "m", version="1", out_dir=tmp_path)


@pytest.mark.data
@pytest.mark.parametrize("name", ["polyp", "wound"])
def test_int8_model_draws_what_its_float_source_draws(name):
    """On validation images the int8 graph's mask agrees with its float source's on nearly every pixel."""
    from perception import datasets
    from perception.segmentation_model import SegmentationModel

    path = shipped(name)
    meta = json.loads(path.with_suffix(".json").read_text())
    if "quantization" not in meta:
        pytest.skip(f"{name} is not an int8 graph")
    _, val = datasets.task_split(meta["training"]["task"])
    if not val:
        pytest.skip(f"no validation data under {datasets.data_root()}")
    int8 = SegmentationModel(path, threads=2, device="cpu")
    source = SegmentationModel(shipped(meta["derived_from"]["name"]), threads=2, device="cpu")
    agreement = [
        float(np.mean(int8.segment(img) == source.segment(img)))
        for img in (datasets.read_image(s.image) for s in val[:24])
    ]
    assert np.mean(agreement) > 0.98, f"{name}: masks agree on {np.mean(agreement):.3f} of pixels"
    assert min(agreement) > 0.9


@pytest.mark.data
def test_quantise_end_to_end_refits_the_gate(tmp_path):
    """A real quantisation of the shipped float wound model: an int8 graph whose refitted gate still knows wounds."""
    pytest.importorskip("sklearn", reason="the gate refit needs scikit-learn (training extra)")
    from perception import datasets
    from perception.segmentation_model import SegmentationModel

    src = shipped("wound-accurate")
    _, val = datasets.task_split("wound")
    if not val:
        pytest.skip(f"no wound data under {datasets.data_root()}")
    done = quantise(
        src, "wound-q", version="0.1", out_dir=tmp_path, calibration_images=8, threads=2, evaluate_val=False
    )
    meta = done.metadata
    assert meta["derived_from"]["name"] == "wound-accurate" and meta["quantization"]["weights"].startswith("int8")
    assert meta["content_gate"]["fitted_on"] == "the quantised graph's features"
    assert "val_metrics" not in meta and "parity_max_abs_diff" not in meta  # the float source's, not this graph's
    assert json.loads(done.onnx_path.with_suffix(".json").read_text())["sha256"] == meta["sha256"]
    model = SegmentationModel(done.onnx_path, threads=2, device="cpu")
    findings = model.predict(datasets.read_image(val[0].image))
    assert findings.content is not None and findings.content.in_domain
