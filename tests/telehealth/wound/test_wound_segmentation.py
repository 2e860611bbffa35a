"""The segmenter contract: any callable, or a perception ONNX model through the adapter."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from wound_synth import ellipse_mask

from telehealth.wound import OnnxWoundSegmenter, analyse_wound_photo, default_wound_model_path

PKG = Path(__file__).resolve().parents[3] / "telehealth" / "wound"


def red_disc_photo() -> tuple[np.ndarray, np.ndarray]:
    img = np.full((96, 128, 3), 40, np.uint8)
    mask = ellipse_mask((96, 128), (60, 50), (30, 20))
    img[mask] = (230, 40, 40)
    return img, mask


class FakeModel:
    """Only predict_with_mask + reset, like a FrameModel without ``segment``."""

    info = SimpleNamespace(name="fake-wound", version="9")

    def __init__(self, mask: np.ndarray) -> None:
        self.mask, self.resets = mask, 0

    def predict_with_mask(self, rgb):
        from perception.findings import Finding, FrameFindings, ModelInfo

        found = FrameFindings(
            ModelInfo("fake-wound", "9"),
            (rgb.shape[1], rgb.shape[0]),
            objects=(Finding("wound", 0.75, (30, 30, 90, 70)),),
        )
        return found, self.mask

    def reset(self) -> None:
        self.resets += 1


def test_adapter_uses_predict_with_mask_and_resets_tracker():
    img, mask = red_disc_photo()
    model = FakeModel(mask.astype(np.uint8))
    seg = OnnxWoundSegmenter(model)
    got = seg(img)
    assert (
        got.mask.dtype == bool
        and (got.mask == mask).all()
        and got.model.model_dump() == {"name": "fake-wound", "version": "9"}
    )
    assert got.score == 0.75  # the model's own score, never a made-up one
    assert model.resets == 1
    r = analyse_wound_photo(img, seg)
    assert r.model.name == "fake-wound" and r.wound_found and r.wound_score == 0.75
    ys, xs = np.nonzero(mask)
    assert r.wound_box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_default_model_path_points_into_perception_weights():
    p = default_wound_model_path()
    assert p.parent.name == "weights" and p.parent.parent.name == "perception"
    assert p.name == "wound-accurate.onnx"  # photos are measured with the accurate model, streams run the fast one


def test_default_model_path_falls_back_to_the_fast_model(tmp_path, monkeypatch):
    import perception

    (tmp_path / "weights").mkdir()
    monkeypatch.setattr(perception, "__file__", str(tmp_path / "__init__.py"))
    assert default_wound_model_path() == tmp_path / "weights" / "wound.onnx"
    (tmp_path / "weights" / "wound-accurate.onnx").write_bytes(b"")
    assert default_wound_model_path() == tmp_path / "weights" / "wound-accurate.onnx"


def _toy_onnx(path: Path) -> Path:
    """logits = 20 * (red - 0.5): red pixels are "wound"."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [
            helper.make_node("Slice", ["image", "s", "e", "ax"], ["red"]),
            helper.make_node("Sub", ["red", "half"], ["c"]),
            helper.make_node("Mul", ["c", "gain"], ["logits"]),
        ],
        "toy",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, 64, 64])],
        [
            helper.make_tensor("s", TensorProto.INT64, [1], [0]),
            helper.make_tensor("e", TensorProto.INT64, [1], [1]),
            helper.make_tensor("ax", TensorProto.INT64, [1], [1]),
            helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
            helper.make_tensor("gain", TensorProto.FLOAT, [], [20.0]),
        ],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    path.with_suffix(".json").write_text(
        json.dumps({"name": "toy-wound", "version": "3", "labels": ["wound"], "mean": [0, 0, 0], "std": [1, 1, 1]})
    )
    return path


def test_real_onnx_model_through_adapter(tmp_path):
    pytest.importorskip("onnxruntime")
    seg = OnnxWoundSegmenter.from_path(_toy_onnx(tmp_path / "wound.onnx"), device="cpu")
    img, mask = red_disc_photo()
    got = seg(img)
    out = got.mask
    assert (got.model.name, got.model.version) == ("toy-wound", "3") and out.shape == mask.shape
    assert 0.5 < got.score <= 1.0
    iou = (out & mask).sum() / (out | mask).sum()
    assert iou > 0.85


def test_package_imports_only_allowed_scopecast_packages():
    forbidden = {"stream", "overlay", "scopecast"}
    sources = sorted(PKG.glob("*.py"))
    assert len(sources) > 5, f"no sources found under {PKG}"
    for f in sources:
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in forbidden, f"{f.name} imports {n}"


class GatedFakeModel(FakeModel):
    """A model with a content gate that judges every photo foreign."""

    has_content_gate = True

    def predict_with_mask(self, rgb):
        from perception.findings import ContentCheck, FrameFindings, ModelInfo

        found = FrameFindings(
            ModelInfo("fake-wound", "9"),
            (rgb.shape[1], rgb.shape[0]),
            content=ContentCheck("a wound photo", False, distance=900.0, threshold=300.0),
        )
        return found, self.mask


def test_photo_the_gate_rejects_is_not_measured_and_says_why():
    from telehealth.wound.segmentation import ContentNotRecognised

    img, mask = red_disc_photo()
    seg = OnnxWoundSegmenter(GatedFakeModel(mask))
    with pytest.raises(ContentNotRecognised, match="does not look like a wound photo"):
        seg(img)
