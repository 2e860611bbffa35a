"""Helpers for perception tests: tiny hand-built ONNX graphs (no torch, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "perception" / "weights"


def make_onnx(
    path: Path,
    *,
    size: int = 64,
    channels: int = 3,
    elem_type: int = TensorProto.FLOAT,
    n_inputs: int = 1,
    rank: int = 4,
    meta: dict | None = None,
    sidecar: dict | None = None,
    gate: bool = False,
) -> Path:
    """A "segmentation" graph whose logits are 20 * (red channel - 0.5).

    With mean 0 / std 1 metadata the red channel is pixel / 255, so bright red
    pixels are foreground with probability ~1 and dark ones background.
    With ``gate`` a second output ``domain_distance`` is 100 x the mean of the
    blue channel: blue frames are "foreign content" for a threshold of 10.
    Arguments break the graph in controlled ways for the validation tests.
    """
    shape: list = ["N", channels, size, size][:rank] if rank <= 4 else ["N", channels, size, size, 1]
    inputs = [
        helper.make_tensor_value_info("image" if i == 0 else f"extra{i}", elem_type, shape) for i in range(n_inputs)
    ]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, size, size])
    inits = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [20.0]),
    ]
    src = "image"
    nodes = []
    if elem_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT))
        src = "image_f"
    nodes += [
        helper.make_node("Slice", [src, "starts", "ends", "axes"], ["red"]),
        helper.make_node("Sub", ["red", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logits"]),
    ]
    outputs = [out]
    if gate:
        inits += [
            helper.make_tensor("b_starts", TensorProto.INT64, [1], [2]),
            helper.make_tensor("b_ends", TensorProto.INT64, [1], [3]),
            helper.make_tensor("hundred", TensorProto.FLOAT, [], [100.0]),
        ]
        nodes += [
            helper.make_node("Slice", [src, "b_starts", "b_ends", "axes"], ["blue"]),
            helper.make_node("ReduceMean", ["blue"], ["blue_mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Mul", ["blue_mean", "hundred"], ["domain_distance"]),
        ]
        outputs.append(helper.make_tensor_value_info("domain_distance", TensorProto.FLOAT, ["N"]))
    graph = helper.make_graph(nodes, "toy", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if meta is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "scopecast", json.dumps(meta)
    onnx.save(model, str(path))
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


TOY_META = {
    "name": "toy",
    "version": "9.9",
    "labels": ["blob"],
    "mean": [0.0, 0.0, 0.0],
    "std": [1.0, 1.0, 1.0],
    "threshold": 0.5,
    "min_area_frac": 0.001,
    "input_size": [64, 64],
}


GATED_META = {**TOY_META, "content_gate": {"output": "domain_distance", "content": "red things", "threshold": 10.0}}


def red_frame(w: int, h: int, rects: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Black RGB frame with red filled rectangles (x0, y0, x1, y1), x1/y1 exclusive."""
    f = np.zeros((h, w, 3), np.uint8)
    for x0, y0, x1, y1 in rects:
        f[y0:y1, x0:x1, 0] = 255
    return f


def shipped(name: str) -> Path:
    p = WEIGHTS / f"{name}.onnx"
    if not p.is_file():
        pytest.skip(f"shipped model {p} is not present")
    return p
