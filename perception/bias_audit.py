"""Bias audit: a wound model's Dice grouped by the skin tone around the wound.

    python -m perception.bias_audit --model wound --split wound [--json FILE]

Skin tone is estimated per image as the individual typology angle (ITA°) of the
periwound skin: a ring 3-15 % of the image's short side wide around the
ground-truth wound, in CIELAB (``ITA = atan((L* - 50) / b*)`` in degrees,
the median over the ring's pixels). Very dark pixels (L* < 10: shadow, black
background) and saturated ones are left out. The angle is binned as by Del Bino
& Bernerd (2013): very light > 55°, light 41-55°, intermediate 28-41°,
tan 10-28°, brown -30-10°, dark < -30°.

What it shows and what it does not: ITA° is a colourimetric estimate from
uncalibrated phone photos (white balance and light vary), not a
Fitzpatrick phototype reported by a person; small groups give wide
uncertainty, and the counts are printed with every mean for that reason.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from perception import datasets

if TYPE_CHECKING:  # loaded by main(), so that --help does not load onnxruntime
    from perception.segmentation_model import SegmentationModel

# (lower bound in degrees, name), from light to dark; Del Bino & Bernerd, Br J Dermatol 2013.
ITA_GROUPS: tuple[tuple[float, str], ...] = (
    (55.0, "very light (>55°)"),
    (41.0, "light (41-55°)"),
    (28.0, "intermediate (28-41°)"),
    (10.0, "tan (10-28°)"),
    (-30.0, "brown (-30-10°)"),
    (-math.inf, "dark (<-30°)"),
)


def periwound_ring(mask: np.ndarray, *, inner: float = 0.03, outer: float = 0.15) -> np.ndarray:
    """The skin ring around a wound mask (bool H x W): between ``inner`` and ``outer`` of the short side away."""
    short = min(mask.shape)
    m = mask.astype(np.uint8)

    def grow(frac: float) -> np.ndarray:
        r = max(1, round(frac * short))
        return cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0

    ring: np.ndarray = grow(outer) & ~grow(inner)
    return ring


def ita_degrees(image_rgb: np.ndarray, mask: np.ndarray) -> float | None:
    """Median ITA° of the periwound skin; None when the mask is empty or too few skin pixels remain."""
    if not mask.any():
        return None
    ring = periwound_ring(mask)
    lab = cv2.cvtColor(image_rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    L, b = lab[..., 0][ring], lab[..., 2][ring]
    rgb = image_rgb[ring]
    keep = (L > 10) & (L < 98) & (rgb.max(1) < 250)
    if keep.sum() < 50:
        return None
    angles = np.degrees(np.arctan2(L[keep] - 50.0, b[keep]))
    return float(np.median(angles))


def ita_group(angle: float) -> str:
    for lower, name in ITA_GROUPS:
        if angle > lower:
            return name
    return ITA_GROUPS[-1][1]


@dataclass(frozen=True)
class GroupScore:
    group: str
    n_images: int
    dice_mean: float
    dice_std: float


def audit(
    model: SegmentationModel, samples: Sequence[datasets.Sample]
) -> tuple[list[GroupScore], list[dict[str, Any]]]:
    """Per-group Dice of ``model`` on ``samples`` (images without a usable ring go to "not estimated")."""
    from perception.metrics import mask_scores

    rows: list[dict[str, Any]] = []
    for s in samples:
        img = datasets.read_image(s.image)
        gt = datasets.read_mask(s.mask)
        if gt.shape != img.shape[:2]:
            gt = cv2.resize(gt.astype(np.uint8), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
        model.reset()
        _, pred = model.predict_with_mask(img)
        angle = ita_degrees(img, gt)
        rows.append(
            {
                "name": s.name,
                "ita": angle,
                "group": ita_group(angle) if angle is not None else "not estimated",
                "dice": mask_scores(pred, gt)["dice"],
            }
        )
    order = [name for _, name in ITA_GROUPS] + ["not estimated"]
    groups = []
    for name in order:
        dice = [r["dice"] for r in rows if r["group"] == name]
        if dice:
            groups.append(GroupScore(name, len(dice), float(np.mean(dice)), float(np.std(dice))))
    return groups, rows


def markdown_table(groups: Sequence[GroupScore]) -> str:
    lines = ["| skin tone (ITA°) | images | Dice mean | Dice s.d. |", "|---|---:|---:|---:|"]
    lines += [f"| {g.group} | {g.n_images} | {g.dice_mean:.3f} | {g.dice_std:.3f} |" for g in groups]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from perception.evaluate import load_model
    from perception.model import ModelError

    p = argparse.ArgumentParser(prog="scopecast eval bias", description="Dice by periwound skin tone (ITA°).")
    p.add_argument("--model", default="wound", help="shipped model name or .onnx path")
    p.add_argument("--split", choices=datasets.TASKS, default="wound", help="the validation split to audit")
    p.add_argument("--json", type=Path, default=None, help="also write groups and per-image angles here")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    try:
        model = load_model(args.model, threads=args.threads)
        _, val = datasets.task_split(args.split)
    except (ModelError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not val:
        print(f"error: no validation data for {args.split!r} under {datasets.data_root()}", file=sys.stderr)
        return 2
    groups, rows = audit(model, val)
    print(markdown_table(groups))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"groups": [asdict(g) for g in groups], "images": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
