"""evaluate() end to end on a synthetic folder with the toy ONNX; training helpers without training."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime")
from perception_testutil import red_frame  # noqa: E402

from perception.evaluate import evaluate, main, mask_boxes  # noqa: E402
from perception.model import ModelError  # noqa: E402


@pytest.fixture
def folder(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    cases = {
        "exact": ([(40, 30, 120, 90)], [(40, 30, 120, 90)]),  # drawn = truth
        "half": ([(40, 30, 80, 90)], [(40, 30, 120, 90)]),  # finds the left half
        "miss": ([], [(10, 10, 60, 60)]),  # finds nothing
        "empty": ([], []),  # nothing there, nothing found
    }
    for name, (drawn, truth) in cases.items():
        cv2.imwrite(str(images / f"{name}.png"), cv2.cvtColor(red_frame(160, 120, drawn), cv2.COLOR_RGB2BGR))
        m = np.zeros((120, 160), np.uint8)
        for x0, y0, x1, y1 in truth:
            m[y0:y1, x0:x1] = 255
        cv2.imwrite(str(masks / f"{name}.png"), m)
    return images, masks


def test_evaluate_scores_files_and_worst_grid(toy_onnx, folder, tmp_path):
    out = tmp_path / "out"
    res = evaluate(toy_onnx, *folder, out_dir=out)
    # per image Dice ~ exact 1, half 2/3, miss 0, empty 1 -> mean ~0.667
    assert res["n_images"] == 4
    assert res["dice"] == pytest.approx((1 + 2 / 3 + 0 + 1) / 4, abs=0.03)
    assert res["precision"] == pytest.approx((1 + 1 + 0 + 1) / 4, abs=0.03)
    assert res["recall"] == pytest.approx((1 + 0.5 + 0 + 1) / 4, abs=0.03)
    # boxes: exact matches, half has IoU 0.5 (borderline), miss is missed -> AP between 1/3 and 2/3
    assert 1 / 3 - 0.01 <= res["ap50"] <= 2 / 3 + 0.01
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert {r["name"] for r in rows} == {"exact", "half", "miss", "empty"}
    by = {r["name"]: float(r["dice"]) for r in rows}
    assert by["exact"] > 0.95 and by["miss"] == 0.0 and by["empty"] == 1.0
    assert (out / "worst.png").stat().st_size > 1000
    assert json.loads((out / "summary.json").read_text())["n_images"] == 4
    only = evaluate(toy_onnx, *folder, names=["exact"], out_dir=tmp_path / "one")
    assert only["n_images"] == 1 and only["dice"] > 0.95 and only["ap50"] == 1.0


def test_evaluate_cli(toy_onnx, folder, tmp_path, capsys):
    js = tmp_path / "r.json"
    rc = main(
        [
            "--model",
            str(toy_onnx),
            "--images",
            str(folder[0]),
            "--masks",
            str(folder[1]),
            "--out",
            str(tmp_path / "cli"),
            "--json",
            str(js),
        ]
    )
    assert rc == 0
    assert set(json.loads(js.read_text())) >= {"dice", "iou", "precision", "recall", "ap50"}
    assert main(["--model", "no-such-model", "--images", str(folder[0]), "--masks", str(folder[1])]) == 2
    assert "no-such-model" in capsys.readouterr().err


def test_unknown_model_name():
    from perception.evaluate import load_model

    with pytest.raises(ModelError, match="unknown model"):
        load_model("definitely-not-shipped")


def test_mask_boxes():
    m = np.zeros((50, 50), bool)
    m[5:10, 5:15] = True
    m[30:40, 30:35] = True
    m[0, 49] = True  # 1 px speck
    assert sorted(mask_boxes(m, min_area=2)) == [(5, 5, 15, 10), (30, 30, 35, 40)]


def test_training_helpers_without_training():
    torch = pytest.importorskip("torch")
    pytest.importorskip("albumentations")
    from perception.nets import LiteUNet, count_params
    from perception.training import TrainConfig, build_augment, lr_factor, normalise_batch, seg_loss

    cfg = TrainConfig()
    net = LiteUNet(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.arch_kwargs.items()}).eval()
    assert 0.5e6 <= count_params(net) <= 2e6
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 64, 96)).shape == (2, 1, 64, 96)
    aug = build_augment(64)
    img = np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)
    out = aug(image=img, mask=np.ones((80, 80), np.uint8))
    assert out["image"].shape == (64, 64, 3) and out["mask"].shape == (64, 64)
    x = normalise_batch(np.zeros((2, 8, 8, 3), np.uint8))
    assert x.shape == (2, 3, 8, 8) and x.dtype == np.float32 and x[0, 0, 0, 0] == pytest.approx(-0.485 / 0.229)
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10) == pytest.approx(0.01)
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1
    good = seg_loss(target * 20 - 10, target)
    bad = seg_loss(10 - target * 20, target)
    assert float(good) < 0.05 < float(bad)
