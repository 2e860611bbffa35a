"""Closed-question eval of the dialogue/grounding layer on ground-truth masks.

    scopecast eval vlm [--backend grounded] [--limit 50] [--json FILE]

Findings given to the backend are the connected components of the TRUE mask,
so the score measures only whether the backend turns correct detections into
correct answers (not the segmentation model). Questions per image:
  presence  "Is there a wound?" — also on frames of the other dataset with no findings (negatives)
  region    "Which region of the image is the wound in?" — the largest component's third of the frame
  size      "Is the wound larger than N% of the image?" — total mask area vs N
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from perception.findings import Finding, FrameFindings, ModelInfo
from perception.vlm.base import AskRequest, VlmBackend, VlmError, collect
from perception.vlm.geometry import region_words

DATA_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data"
DATASETS = {
    "fuseg": ("wound", "fuseg/train/images", "fuseg/train/masks"),
    "kvasir": ("polyp", "kvasir-seg/images", "kvasir-seg/masks"),
}
MIN_COMPONENT_FRAC = 0.001  # specks below 0.1% of the frame are annotation noise
SIZE_THRESHOLDS = (5, 10, 20)
# Frames are downscaled for speed: answers depend on relative geometry only.
MAX_SIDE = 512


@dataclass(frozen=True)
class Item:
    kind: str  # presence | region | size
    question: str
    expected: str  # "yes"/"no" or region words
    image: np.ndarray
    findings: FrameFindings


def mask_findings(mask: np.ndarray, label: str) -> FrameFindings:
    """One Finding per connected component of a binary mask (score 1.0: it is ground truth)."""
    h, w = mask.shape
    n, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    objs = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area >= MIN_COMPONENT_FRAC * w * h:
            objs.append(Finding(label, 1.0, (x, y, x + bw, y + bh), area_px=area))
    return FrameFindings(ModelInfo("ground-truth", "mask", labels=(label,)), (w, h), tuple(objs))


def _load(path: Path, gray: bool) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    scale = MAX_SIDE / max(img.shape[:2])
    if scale < 1:
        img = cv2.resize(
            img,
            (round(img.shape[1] * scale), round(img.shape[0] * scale)),
            interpolation=cv2.INTER_NEAREST if gray else cv2.INTER_AREA,
        )
    return img if gray else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _pairs(root: Path, name: str, limit: int) -> list[tuple[Path, Path]]:
    _, images, masks = DATASETS[name]
    out = []
    for img in sorted((root / images).iterdir()):
        cands = [p for p in (root / masks).glob(img.stem + ".*")]
        if cands:
            out.append((img, cands[0]))
        if len(out) >= limit:
            break
    return out


def build_items(root: Path, limit: int) -> list[Item]:
    items: list[Item] = []
    names = list(DATASETS)
    for k, name in enumerate(names):
        label = DATASETS[name][0]
        other = names[(k + 1) % len(names)]
        others = _pairs(root, other, limit)
        for i, (img_p, mask_p) in enumerate(_pairs(root, name, limit)):
            image, mask = _load(img_p, False), _load(mask_p, True)
            ff = mask_findings(mask, label)
            if not ff.objects:
                continue
            items.append(Item("presence", f"Is there a {label}?", "yes", image, ff))
            if i < len(others):  # negative: another dataset's frame, nothing of this label in it
                neg = _load(others[i][0], False)
                empty = FrameFindings(ff.model, (neg.shape[1], neg.shape[0]), ())
                items.append(Item("presence", f"Is there a {label} in this frame?", "no", neg, empty))
            largest = max(ff.objects, key=lambda f: f.area_px)
            items.append(
                Item(
                    "region",
                    f"Which region of the image is the {label} in (upper/lower, left/right/centre)?",
                    region_words(largest.box, ff.frame_size),
                    image,
                    ff,
                )
            )
            thr = SIZE_THRESHOLDS[i % len(SIZE_THRESHOLDS)]
            frac = float((mask > 0).mean())
            if abs(frac * 100 - thr) > 0.5:  # skip near-ties where rounding decides
                items.append(
                    Item(
                        "size",
                        f"Is the {label} larger than {thr}% of the image?",
                        "yes" if frac * 100 > thr else "no",
                        image,
                        ff,
                    )
                )
    return items


_REGION = re.compile(r"\b(?:(upper|middle|lower) (left|centre|center|right)|(centre|center))\b", re.I)


def score(item: Item, answer: str) -> bool:
    text = answer.strip().lower()
    if item.kind in ("presence", "size"):
        m = re.match(r"\W*(yes|no)\b", text)
        return m is not None and m.group(1) == item.expected
    m = _REGION.search(text)
    if not m:
        return False
    got = (f"{m.group(1)} {m.group(2)}" if m.group(1) else "centre").replace("center", "centre")
    return got == item.expected


async def run_eval(backend: VlmBackend, items: Sequence[Item]) -> dict[str, Any]:
    per: dict[str, list[int]] = {}
    errors = 0
    for item in items:
        try:
            ans = await collect(backend.answer(AskRequest(item.question, image=item.image, findings=item.findings)))
            ok = score(item, ans)
        except VlmError:
            ok, errors = False, errors + 1
        per.setdefault(item.kind, []).append(int(ok))
    result: dict[str, Any] = {k: {"n": len(v), "accuracy": sum(v) / len(v)} for k, v in sorted(per.items())}
    allv = [x for v in per.values() for x in v]
    result["overall"] = {"n": len(allv), "accuracy": sum(allv) / len(allv) if allv else 0.0}
    result["errors"] = errors
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="scopecast eval vlm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backend", default="grounded", choices=["grounded", "transformers", "openai"])
    ap.add_argument("--model-path")
    ap.add_argument("--base-url")
    ap.add_argument("--model")
    ap.add_argument("--limit", type=int, default=50, help="images per dataset (default 50)")
    ap.add_argument("--data-root", type=Path, default=DATA_ROOT)
    ap.add_argument("--json", dest="json_path", help="write the result as JSON to this file ('-' for stdout)")
    args = ap.parse_args(argv)
    from perception.vlm.factory import VlmConfig, create_vlm

    if not args.data_root.is_dir():
        print(f"data folder not found: {args.data_root}", file=sys.stderr)
        return 2
    cfg = VlmConfig(backend=args.backend, model_path=args.model_path, base_url=args.base_url, model=args.model)
    backend = create_vlm(cfg)
    items = build_items(args.data_root, args.limit)
    result = asyncio.run(run_eval(backend, items))
    result["backend"] = {"name": backend.info.name, "version": backend.info.version, "backend": backend.info.backend}
    for kind, r in result.items():
        if isinstance(r, dict) and "accuracy" in r:
            print(f"{kind:10s} n={r['n']:4d} accuracy={r['accuracy']:.3f}")
    if args.json_path:
        text = json.dumps(result, indent=2)
        if args.json_path == "-":
            print(text)
        else:
            Path(args.json_path).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
