"""How often a model's content gate accepts each kind of content.

    scopecast eval content --model polyp [--json FILE]

For one shipped model (or ONNX) it reports the in-domain fraction on: the
model's own validation split, the other task's validation split, frames of the
laparoscopy clip and the Cholec80 sample in ``../shared/data/``, the bundled
colonoscopy clip (polyp) or FUSeg's unlabeled test photos (wound), and ordinary photos (scikit-image's bundled sample images,
each whole and as four quadrant crops). Sets whose files are missing are
reported as skipped, with the path looked for.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from perception import datasets
from perception.model import ModelError

if TYPE_CHECKING:  # loaded by main(), so that --help does not load onnxruntime
    from perception.segmentation_model import SegmentationModel

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "scopecast" / "assets"
OWN_TASK = {"polyp": "polyp", "wound": "wound"}


@dataclass(frozen=True)
class ContentSet:
    name: str
    expected_in_domain: bool
    n_images: int
    in_domain_fraction: float | None  # None: the set was not found
    note: str = ""
    distance_min: float | None = None  # the gate's squared distances over the set: how far from the threshold
    distance_median: float | None = None
    distance_max: float | None = None


def video_frames(path: Path, *, stride: int = 5, limit: int = 200) -> Iterator[np.ndarray]:
    """Every ``stride``-th frame of a video file, RGB."""
    cap = cv2.VideoCapture(str(path))
    try:
        i = n = 0
        while n < limit:
            ok, bgr = cap.read()
            if not ok:
                return
            if i % stride == 0:
                n += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()


def sample_photos() -> Iterator[np.ndarray]:
    """scikit-image's bundled colour photos, each whole and as its four quadrants."""
    import os

    import skimage

    folder = Path(os.path.dirname(skimage.__file__)) / "data"
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".png", ".jpg"):
            continue
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None or min(bgr.shape[:2]) < 64:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        yield rgb
        h, w = rgb.shape[:2]
        for y in (0, h // 2):
            for x in (0, w // 2):
                yield rgb[y : y + h // 2, x : x + w // 2]


def _verdicts(model: SegmentationModel, images: Iterable[np.ndarray]) -> tuple[list[bool], list[float]]:
    verdicts: list[bool] = []
    distances: list[float] = []
    for rgb in images:
        model.reset()
        content = model.predict(np.ascontiguousarray(rgb)).content
        if content is None or content.distance is None:  # only gated models are evaluated: they always judge
            raise ModelError(f"{model.info.name} gave no content verdict: {model.content_unavailable_reason}")
        verdicts.append(bool(content.in_domain))
        distances.append(float(content.distance))
    return verdicts, distances


def _folder_images(folder: Path) -> Iterator[np.ndarray]:
    from perception.evaluate import image_files

    return (datasets.read_image(p) for p in image_files(folder))


def evaluate_content(model: SegmentationModel, task: str, root: Path | None = None) -> list[ContentSet]:
    """The gate's in-domain fraction on each content set (see the module docstring)."""
    root = root or datasets.data_root()
    other = "wound" if task == "polyp" else "polyp"
    out: list[ContentSet] = []

    def add(name: str, expected: bool, images_fn: Callable[[], Iterable[np.ndarray]], where: Path | str) -> None:
        try:
            images = list(images_fn())
        except (FileNotFoundError, ImportError) as e:
            out.append(ContentSet(name, expected, 0, None, f"skipped: {e}"))
            return
        if not images:
            out.append(ContentSet(name, expected, 0, None, f"skipped: nothing found at {where}"))
            return
        verdicts, d = _verdicts(model, images)
        out.append(
            ContentSet(
                name,
                expected,
                len(verdicts),
                float(np.mean(verdicts)),
                distance_min=min(d),
                distance_median=float(np.median(d)),
                distance_max=max(d),
            )
        )

    def split_images(t: str) -> Iterator[np.ndarray]:
        _, val = datasets.task_split(t, root=root)
        return (datasets.read_image(s.image) for s in val)

    add(f"{task} validation split", True, lambda: split_images(task), root)
    if task == "polyp":
        colon = ASSETS / "colonoscopy-sample.mp4"
        add("bundled colonoscopy clip (every 5th frame)", True, lambda: video_frames(colon), colon)
    if task == "wound":
        unlabeled = root / "fuseg" / "unlabeled" / "images"
        add("FUSeg unlabeled test photos", True, lambda: _folder_images(unlabeled), unlabeled)
    add(f"{other} validation split", False, lambda: split_images(other), root)
    lap = root / "videos" / "laparoscopy-rvimlab-720p25.mp4"
    add("laparoscopy clip (every 5th frame)", False, lambda: video_frames(lap, stride=5), lap)
    chol = root / "cholec80-instrument-sample" / "images"
    add("Cholec80 sample", False, lambda: _folder_images(chol), chol)
    add("ordinary photos (scikit-image samples + quadrants)", False, sample_photos, "skimage.data")
    return out


def markdown_table(sets: list[ContentSet]) -> str:
    lines = ["| content | should be | images | judged in domain |", "|---|---|---:|---:|"]
    for s in sets:
        frac = f"{100 * s.in_domain_fraction:.1f} %" if s.in_domain_fraction is not None else s.note
        lines.append(f"| {s.name} | {'in' if s.expected_in_domain else 'out'} | {s.n_images} | {frac} |")
    return "\n".join(lines)


def distance_table(sets: list[ContentSet], threshold: float) -> str:
    lines = [f"squared distances (threshold {threshold:.1f}): min / median / max"]
    lines += [
        f"  {s.name}: {s.distance_min:.0f} / {s.distance_median:.0f} / {s.distance_max:.0f}"
        for s in sets
        if s.distance_min is not None
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from perception.evaluate import load_model

    p = argparse.ArgumentParser(prog="scopecast eval content", description="In-domain fraction of a content gate.")
    p.add_argument("--model", default="polyp", help="shipped model name or .onnx path")
    p.add_argument("--task", choices=datasets.TASKS, default=None, help="the model's task (default: its name)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    try:
        model = load_model(args.model, threads=args.threads)
    except (ModelError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    threshold = model.content_check_threshold  # None exactly when the model has no content gate
    if threshold is None:
        print(f"error: {model.info.name}: {model.content_unavailable_reason}", file=sys.stderr)
        return 2
    task = args.task or OWN_TASK.get(model.info.name.split("-")[0])
    if task is None:
        print(f"error: say --task for model {model.info.name!r}", file=sys.stderr)
        return 2
    sets = evaluate_content(model, task)
    print(markdown_table(sets))
    print(distance_table(sets, threshold))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(s) for s in sets], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
