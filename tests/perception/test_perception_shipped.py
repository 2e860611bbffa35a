"""The shipped models: registry, metadata, torch parity and (with data) validation accuracy."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
from perception_testutil import REPO, WEIGHTS, make_onnx, red_frame, shipped  # noqa: E402

from perception import FrameModel, ModelError, ModelRegistry  # noqa: E402
from perception.builtin import register_builtin_models, shipped_models  # noqa: E402
from perception.segmentation_model import SegmentationModel  # noqa: E402

# name -> label (= training task): each task ships a fast default (what streams run) and an accurate model.
MODELS = {"polyp": "polyp", "polyp-accurate": "polyp", "wound": "wound", "wound-accurate": "wound"}
CARDS = REPO / "docs" / "model-cards"
# The per-source columns that follow "all validation" in each card's Dice row.
SOURCE_COLUMNS = {"polyp": ("kvasir-seg", "cvc-clinicdb"), "wound": ()}


def test_registry_lists_and_creates_shipped_models():
    for name in MODELS:
        shipped(name)
    reg = ModelRegistry()
    register_builtin_models(reg, threads=1)
    assert set(MODELS) <= set(reg.names())
    for name, label in MODELS.items():
        m = reg.create(name)
        assert isinstance(m, FrameModel)
        assert m.info.name == name and m.info.labels == (label,)
        for w, h in ((1280, 720), (385, 289)):
            res = m.predict(np.full((h, w, 3), 90, np.uint8))
            assert res.frame_size == (w, h)
            assert all(0.0 <= o.score <= 1.0 and o.label == label for o in res.objects)
        assert reg.create(name) is not m  # one instance per stream


def test_factories_are_lazy(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    make_onnx(tmp_path / "good.onnx")
    reg = ModelRegistry()
    register_builtin_models(reg, weights_dir=tmp_path)  # nothing is loaded yet
    assert reg.names() == ["bad", "good"]
    assert reg.create("good").info.name == "good"
    with pytest.raises(ModelError, match="bad.onnx"):
        reg.create("bad")
    assert shipped_models(tmp_path / "absent") == {}


@pytest.mark.parametrize("name", list(MODELS))
def test_shipped_metadata(name):
    path = shipped(name)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["name"] == name and meta["labels"] == [MODELS[name]]
    assert meta["input_size"][0] % 32 == 0 and meta["input_size"][1] % 32 == 0
    assert len(meta["mean"]) == 3 and len(meta["std"]) == 3 and 0 < meta["threshold"] < 1
    assert meta["opset"] == 17
    assert path.stat().st_size == meta["onnx_bytes"] < 16 * 1024 * 1024
    if "quantization" in meta:  # an int8 graph derived from a shipped float one (perception.quantize)
        assert meta["derived_from"]["name"] in MODELS and "parity_max_abs_diff" not in meta
        assert meta["content_gate"]["fitted_on"] == "the quantised graph's features"
    else:
        assert meta["parity_max_abs_diff"] < 1e-3
    assert 0.5e6 <= meta["params"] <= 5e6
    gate = meta["content_gate"]
    assert gate["output"] == "domain_distance" and gate["threshold"] > 0 and gate["content"]


@pytest.mark.parametrize("name", list(MODELS))
def test_torch_parity(name):
    """onnxruntime and torch (the net rebuilt from the exported weights) agree on the same frames."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from perception.net_loading import net_from_onnx

    path = shipped(name)
    if "quantization" in json.loads(path.with_suffix(".json").read_text()):
        pytest.skip(f"{name} is an int8 graph: tests/perception/test_quantize.py compares it with its float source")
    model = SegmentationModel(path, threads=1, device="cpu")
    net = net_from_onnx(path)
    rng = np.random.default_rng(1)
    frames = [
        red_frame(1280, 720, [(300, 200, 700, 500)]),
        rng.integers(0, 256, (289, 385, 3), dtype=np.uint8),
        np.clip(rng.normal(120, 40, (512, 512, 3)), 0, 255).astype(np.uint8),
    ]
    batch = np.stack([model._preprocess(f) for f in frames])
    got = model._run(batch)[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(batch)).numpy()[:, 0]
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) < 1e-3
    assert np.mean((got > 0) == (ref > 0)) > 0.999


def card_dice(name: str, columns: int) -> list[float]:
    """The first `columns` cells of the card's Dice row: the whole validation split, then per source."""
    text = (CARDS / f"{name}.md").read_text()
    m = re.search(r"^\|\s*Dice \(mean per image\)\s*\|(.*)\|\s*$", text, re.M)
    assert m, f"no 'Dice (mean per image)' row in {CARDS / name}.md"
    return [float(v.strip(" *")) for v in m.group(1).split("|")[:columns]]


def card_content(name: str) -> dict[str, float]:
    """The card's content-gate table: content set -> judged in-domain fraction."""
    text = (CARDS / f"{name}.md").read_text()
    rows = re.findall(r"^\| ([^|]+) \| (in|out) \| \d+ \| ([0-9.]+) % \|$", text, re.M)
    assert rows, f"no content-gate table in {CARDS / name}.md"
    return {label: float(pct) / 100 for label, _, pct in rows}


@pytest.mark.data
@pytest.mark.parametrize("name", list(MODELS))
def test_validation_dice_matches_model_card(name, tmp_path):
    from perception import datasets
    from perception.evaluate import evaluate_split

    path = shipped(name)
    root = datasets.data_root()
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root} (set SCOPECAST_DATA_DIR)")
    res = evaluate_split(path, MODELS[name], out_dir=tmp_path)
    sources = SOURCE_COLUMNS[MODELS[name]]
    expected, *per_source = card_dice(name, 1 + len(sources))
    assert res["dice"] >= expected - 0.01, f"{name}: val Dice {res['dice']:.4f} < card {expected:.4f} - 0.01"
    for src, e in zip(sources, per_source):
        got = res["per_source"][src]["dice"]
        assert got >= e - 0.01, f"{name}: {src} Dice {got:.4f} < card {e:.4f} - 0.01"
    assert res["in_domain_fraction"] >= card_content(name)[f"{MODELS[name]} validation split"] - 0.01
    for key in ("iou", "precision", "recall", "ap50"):
        assert 0.0 <= res[key] <= 1.0
    assert (tmp_path / "per_image.csv").is_file() and (tmp_path / "worst.png").is_file()


@pytest.mark.data
@pytest.mark.parametrize("name", list(MODELS))
def test_content_gate_holds_the_figures_of_its_card(name):
    """Each content set is judged in or out of domain as often as the model card says (within one point)."""
    pytest.importorskip("skimage", reason="scikit-image (test extra) supplies the ordinary photos")
    from perception import datasets
    from perception.content_eval import evaluate_content

    path = shipped(name)
    if not datasets.data_root().is_dir():
        pytest.skip(f"shared data not found at {datasets.data_root()} (set SCOPECAST_DATA_DIR)")
    card = card_content(name)
    model = SegmentationModel(path, withhold_out_of_domain=False)
    measured = {s.name: s for s in evaluate_content(model, MODELS[name])}
    for label, frac in card.items():
        s = measured[label]
        assert s.in_domain_fraction is not None, f"{label}: {s.note}"
        if s.expected_in_domain:
            assert s.in_domain_fraction >= frac - 0.01, f"{name} accepts {label} less often than its card says"
        else:
            assert s.in_domain_fraction <= frac + 0.01, f"{name} accepts {label} more often than its card says"


def test_weights_dir_holds_only_small_shipped_files():
    if not WEIGHTS.is_dir():
        pytest.skip("no perception/weights folder")
    for p in WEIGHTS.iterdir():
        assert p.suffix in {".onnx", ".json"}, f"unexpected file in weights: {p.name}"
        assert p.stat().st_size < 16 * 1024 * 1024
