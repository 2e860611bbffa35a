"""Evaluate a segmentation model on image/mask pairs.

    python -m perception.evaluate --model polyp --images DIR --masks DIR [--json FILE]
    python -m perception.evaluate --model polyp --images DIR            # content gate only: in_domain_fraction
    python -m perception.evaluate --model polyp --split polyp        # the model's validation split

Scores (mean over images, see ``perception.metrics`` for empty-mask conventions):
Dice, IoU, precision, recall of the thresholded mask at the ORIGINAL image
resolution, and box AP at IoU 0.5 of the model's findings (one per connected
component) against ground-truth boxes from the connected components of each
true mask (components smaller than the model's ``min_area_frac`` are ignored,
like the model ignores them). Every image is scored, including those the
model's content gate judges foreign; ``in_domain_fraction`` is the share of
images the gate accepts (absent for a model without a gate).

Writes to the output folder (default ``scopecast-eval/<model>`` under the
current directory, never inside the package or the checkout's code): ``per_image.csv``,
``worst.png`` (the lowest-Dice images: ground truth in green, prediction in
red) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from perception import datasets
from perception.findings import FrameFindings
from perception.metrics import MASK_METRICS, average_precision, confusion, mean_scores, pooled_dice, scores_from_counts
from perception.model import ModelError

if TYPE_CHECKING:  # loaded when a model is, so that --help does not load onnxruntime
    from perception.segmentation_model import SegmentationModel

Row = dict[str, Any]  # one image's scores, as written to per_image.csv
Box = tuple[int, int, int, int]
Detections = list[tuple[Box, float]]  # (box, score) of each finding of one image


def default_eval_dir() -> Path:
    """Where evaluations go unless ``--out`` says otherwise: ``./scopecast-eval`` (the current directory)."""
    return Path.cwd() / "scopecast-eval"


def load_model(model_name_or_path: str | Path, *, threads: int = 1) -> SegmentationModel:
    """A ``SegmentationModel`` from a shipped model name (``polyp``) or an ONNX path.

    The model scores every image (``withhold_out_of_domain=False``): Dice does not depend on the gate.
    """
    from perception.builtin import shipped_models
    from perception.segmentation_model import SegmentationModel

    p = Path(model_name_or_path)
    if p.suffix == ".onnx" or p.exists():
        return SegmentationModel(p, threads=threads, device="cpu", withhold_out_of_domain=False)
    shipped = shipped_models()
    if str(model_name_or_path) not in shipped:
        known = ", ".join(shipped) or "none"
        raise ModelError(f"unknown model {model_name_or_path!r}: not a file and not a shipped model ({known})")
    return SegmentationModel(
        shipped[str(model_name_or_path)], threads=threads, device="cpu", withhold_out_of_domain=False
    )


def _content_columns(found: FrameFindings) -> dict[str, Any]:
    c = found.content
    if c is None or not c.available:
        return {"in_domain": "", "domain_distance": ""}
    return {"in_domain": int(bool(c.in_domain)), "domain_distance": c.distance}


def mask_boxes(mask: np.ndarray, min_area: float) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of the connected components of a mask with at least ``min_area`` pixels."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, a in stats[1:] if a >= min_area]


def _score(
    model: SegmentationModel, samples: Sequence[datasets.Sample], progress: bool
) -> tuple[list[Row], list[Detections], list[list[Box]]]:
    rows: list[Row] = []
    dets: list[Detections] = []
    gts: list[list[Box]] = []
    it: Iterable[datasets.Sample] = samples
    if progress:
        from tqdm import tqdm

        it = tqdm(samples, desc="evaluating", unit="img", leave=False)
    for s in it:
        img = datasets.read_image(s.image)
        gt = datasets.read_mask(s.mask)
        if gt.shape != img.shape[:2]:
            gt = cv2.resize(gt.astype(np.uint8), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
        model.reset()  # unrelated images: no tracking across them
        found, pred = model.predict_with_mask(img)
        tp, fp, fn = confusion(pred, gt)
        min_area = max(1.0, model.meta.min_area_frac * gt.size)
        g = mask_boxes(gt, min_area)
        d: Detections = [(o.box, o.score) for o in found.objects]
        rows.append(
            {
                "source": s.source,
                "name": s.name,
                **scores_from_counts(tp, fp, fn),
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "n_true": len(g),
                "n_found": len(d),
                "ms": found.inference_ms,
                "width": img.shape[1],
                "height": img.shape[0],
                **_content_columns(found),
            }
        )
        dets.append(d)
        gts.append(g)
    return rows, dets, gts


def _aggregate(rows: list[Row], dets: Sequence[Detections], gts: Sequence[list[Box]]) -> dict[str, Any]:
    out: dict[str, Any] = mean_scores(rows)
    out["dice_pooled"] = pooled_dice((r["tp"], r["fp"], r["fn"]) for r in rows) if rows else float("nan")
    out["ap50"] = average_precision(dets, gts, 0.5) if rows else float("nan")
    out["n_images"] = len(rows)
    out["ms_mean"] = float(np.mean([r["ms"] for r in rows])) if rows else float("nan")
    out.update(_in_domain(rows))
    return out


def _in_domain(rows: list[Row]) -> dict[str, Any]:
    judged = [r["in_domain"] for r in rows if r.get("in_domain", "") != ""]
    if not judged:
        return {}
    return {"in_domain_fraction": float(np.mean(judged)), "n_in_domain": int(sum(judged))}


def _write_csv(rows: list[Row], path: Path) -> None:
    keys = [
        "source",
        "name",
        *MASK_METRICS,
        "tp",
        "fp",
        "fn",
        "n_true",
        "n_found",
        "ms",
        "width",
        "height",
        "in_domain",
        "domain_distance",
    ]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.5f}" if isinstance(r[k], float) else r[k]) for k in keys if k in r})


def _worst_grid(
    model: SegmentationModel, samples: Sequence[datasets.Sample], rows: list[Row], path: Path, k: int = 12
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(range(len(rows)), key=lambda i: rows[i]["dice"])[:k]
    if not order:
        return
    cols = min(4, len(order))
    nrows = (len(order) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, order):
        s = samples[i]
        img = datasets.read_image(s.image)
        gt: np.ndarray = datasets.read_mask(s.mask).astype(np.uint8)
        if gt.shape != img.shape[:2]:
            gt = cv2.resize(gt, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
        pred = model.segment(img).astype(np.uint8)
        scale = 320.0 / max(img.shape[:2])
        size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
        vis = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        for m, colour in ((gt, (0, 255, 0)), (pred, (255, 0, 0))):
            small = cv2.resize(m, size, interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(vis, contours, -1, colour, 2)
        ax.imshow(vis)
        ax.set_title(f"{s.source}/{s.name}\nDice {rows[i]['dice']:.3f}", fontsize=8)
    fig.suptitle("worst cases: ground truth green, prediction red", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def evaluate_samples(
    model: SegmentationModel,
    samples: Sequence[datasets.Sample],
    *,
    out_dir: str | Path | None = None,
    worst_k: int = 12,
    progress: bool = False,
) -> dict[str, Any]:
    """Score a loaded model on samples; with ``out_dir``, write CSV, worst-case grid and summary there.

    Returns ``dice, iou, precision, recall`` (means over images), ``dice_pooled`` (pixel counts
    summed over images, FUSeg's "data-based" Dice), ``ap50, n_images, ms_mean`` and, when the
    samples come from several sources, ``per_source`` with the same keys per source.
    """
    samples = list(samples)
    rows, dets, gts = _score(model, samples, progress)
    res = _aggregate(rows, dets, gts)
    sources = sorted({r["source"] for r in rows})
    if len(sources) > 1:
        res["per_source"] = {}
        for src in sources:
            idx = [i for i, r in enumerate(rows) if r["source"] == src]
            res["per_source"][src] = _aggregate([rows[i] for i in idx], [dets[i] for i in idx], [gts[i] for i in idx])
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(rows, out / "per_image.csv")
        _worst_grid(model, samples, rows, out / "worst.png", worst_k)
        res["per_image_csv"] = str(out / "per_image.csv")
        res["worst_png"] = str(out / "worst.png")
        (out / "summary.json").write_text(json.dumps(res, indent=2) + "\n")
    model.reset()
    return res


def evaluate(
    model_name_or_path: str | Path,
    images_dir: str | Path,
    masks_dir: str | Path,
    *,
    names: Iterable[str] | None = None,
    out_dir: str | Path | None = None,
    threads: int = 1,
    worst_k: int = 12,
) -> dict[str, Any]:
    """Evaluate a shipped model (by name) or an ONNX file on ``images_dir``/``masks_dir`` pairs.

    ``names`` restricts to those base names. Writes ``per_image.csv``, ``worst.png`` and
    ``summary.json`` to ``out_dir`` (default ``./scopecast-eval/<model>``). Returns a dict with
    ``dice``, ``iou``, ``precision``, ``recall``, ``ap50`` (plus ``n_images``, ``ms_mean``
    and the paths written).
    """
    samples = datasets.pair_folder(images_dir, masks_dir)
    if names is not None:
        wanted = set(names)
        samples = [s for s in samples if s.name in wanted]
    if not samples:
        raise FileNotFoundError(f"no image/mask pairs in {images_dir} and {masks_dir}")
    model = load_model(model_name_or_path, threads=threads)
    if out_dir is None:
        out_dir = default_eval_dir() / Path(str(model_name_or_path)).stem
    return evaluate_samples(model, samples, out_dir=out_dir, worst_k=worst_k)


def image_files(images_dir: str | Path) -> list[Path]:
    d = Path(images_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"folder not found: {d}")
    return sorted(p for p in d.iterdir() if p.suffix.lower() in datasets.IMAGE_SUFFIXES)


def content_check(
    model_name_or_path: str | Path, images_dir: str | Path, *, out_dir: str | Path | None = None, threads: int = 1
) -> dict[str, Any]:
    """The content gate's verdict on every image of a folder without masks: ``in_domain_fraction`` and per image."""
    files = image_files(images_dir)
    if not files:
        raise FileNotFoundError(f"no images in {images_dir}")
    model = load_model(model_name_or_path, threads=threads)
    if not model.has_content_gate:
        raise ModelError(f"{model.info.name}: {model.content_unavailable_reason}")
    rows = []
    for path in files:
        model.reset()
        found = model.predict(datasets.read_image(path))
        rows.append({"name": path.name, **_content_columns(found)})
    res: dict[str, Any] = {"n_images": len(rows), "content": model.content_words, **_in_domain(rows)}
    out = Path(out_dir) if out_dir is not None else default_eval_dir() / f"{Path(str(model_name_or_path)).stem}-content"
    out.mkdir(parents=True, exist_ok=True)
    with (out / "per_image.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["name", "in_domain", "domain_distance"])
        w.writeheader()
        w.writerows(rows)
    res["per_image_csv"] = str(out / "per_image.csv")
    return res


def evaluate_split(
    model_name_or_path: str | Path,
    task: str,
    *,
    out_dir: str | Path | None = None,
    threads: int = 1,
    seed: int = datasets.DEFAULT_SEED,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate on the validation split of a training task (``polyp`` or ``wound``)."""
    _, val = datasets.task_split(task, seed=seed)
    if not val:
        raise FileNotFoundError(f"no validation data for {task!r} under {datasets.data_root()}")
    model = load_model(model_name_or_path, threads=threads)
    if out_dir is None:
        out_dir = default_eval_dir() / f"{Path(str(model_name_or_path)).stem}-{task}-val"
    return evaluate_samples(model, val, out_dir=out_dir, progress=progress)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Evaluate a segmentation model.")
    p.add_argument("--model", required=True, help="shipped model name (polyp, wound) or path to an .onnx")
    p.add_argument("--images", type=Path, help="folder of images")
    p.add_argument("--masks", type=Path, help="folder of masks (same base names, white = foreground)")
    p.add_argument("--split", choices=datasets.TASKS, help="evaluate on this task's validation split instead")
    p.add_argument("--out", type=Path, default=None, help="output folder (default ./scopecast-eval/<model>)")
    p.add_argument("--json", type=Path, default=None, help="also write the summary to this file")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    try:
        if args.split:
            res = evaluate_split(
                args.model, args.split, out_dir=args.out, threads=args.threads, progress=sys.stderr.isatty()
            )
        elif args.images and args.masks:
            res = evaluate(args.model, args.images, args.masks, out_dir=args.out, threads=args.threads)
        elif args.images:
            res = content_check(args.model, args.images, out_dir=args.out, threads=args.threads)
        else:
            p.error("give --images (and --masks for Dice), or --split")
    except (ModelError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
