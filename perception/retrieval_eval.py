"""`scopecast eval retrieval`: does an image's embedding find the other images of the same lesion?

    scopecast eval retrieval --model polyp --images DIR --groups groups.json [--exclude-neighbours 2] [--json OUT]

``groups.json`` maps each image's base name (``012.jpg`` or ``012``) to a group id: the same lesion or polyp.
Every image is a query against all the others, ranked by cosine similarity of the embeddings; a candidate is
relevant when it is in the query's group. Printed, over all queries and per group:

- **recall@1, recall@5**: the fraction of queries with a relevant image among the first 1 / 5;
- **mAP**: the mean over queries of the average precision of the whole ranking.

Frames of one video next to each other are near-copies that any embedding finds, so ``--exclude-neighbours N``
removes from a query's candidates the images of its own group within N positions of it in name order (names that
sort in time: ``001.jpg``, ``002.jpg``, ... in natural order, so ``f2`` comes before ``f10``). A query left with
no relevant candidate is not scored (counted as ``unscored``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # loaded by main(), so that --help and input errors do not load onnxruntime
    from perception.embedding import ImageEmbedder

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
TOP_K = (1, 5)


class RetrievalInputError(ValueError):
    """The images or the groups file cannot be evaluated; the message says which and why."""


@dataclass(frozen=True)
class RetrievalScores:
    recall_at_1: float
    recall_at_5: float
    mean_ap: float
    queries: int  # queries scored
    unscored: int  # queries with no relevant candidate left after the exclusions


@dataclass(frozen=True)
class RetrievalReport:
    model: str
    model_version: str
    images: int
    groups: int
    exclude_neighbours: int
    overall: RetrievalScores
    per_group: dict[str, RetrievalScores]


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders the digits in a name by value (``f2`` before ``f10``)."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name))


def per_query(
    vectors: np.ndarray, groups: Sequence[str], *, exclude_neighbours: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(hit@1, hit@5, average precision, scored) per query, the rows of ``vectors`` (N x D, unit length) being in
    time order. Candidates exclude the query and the same-group rows within ``exclude_neighbours`` positions."""
    x = np.asarray(vectors, np.float64)
    n = len(x)
    if x.ndim != 2 or n != len(groups):
        raise ValueError(f"need one vector per group label: {x.shape} vectors, {len(groups)} labels")
    labels = np.asarray(groups, dtype=object)
    sims = x @ x.T
    positions = np.arange(n)
    hit1, hit5, ap, scored = (np.zeros(n) for _ in range(4))
    for q in range(n):
        same = labels == labels[q]
        excluded = same & (np.abs(positions - q) <= max(0, exclude_neighbours))
        excluded[q] = True
        candidates = np.flatnonzero(~excluded)
        # stable sort on -similarity: ties keep name order, so the scores do not depend on the platform
        ranked = candidates[np.argsort(-sims[q, candidates], kind="stable")]
        relevant = same[ranked]
        if not relevant.any():
            continue
        scored[q] = 1
        hit1[q] = relevant[:1].any()
        hit5[q] = relevant[:5].any()
        ranks = np.flatnonzero(relevant) + 1
        ap[q] = float(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    return hit1, hit5, ap, scored.astype(bool)


def _scores(hit1: np.ndarray, hit5: np.ndarray, ap: np.ndarray, scored: np.ndarray) -> RetrievalScores:
    k = int(scored.sum())
    mean = (lambda a: float(a[scored].mean())) if k else (lambda a: float("nan"))
    return RetrievalScores(mean(hit1), mean(hit5), mean(ap), k, int(len(scored) - k))


def retrieval_scores(
    vectors: np.ndarray, groups: Sequence[str], *, exclude_neighbours: int = 0
) -> tuple[RetrievalScores, dict[str, RetrievalScores]]:
    """(over all queries, per group of the queries) for vectors in time order; see ``per_query``."""
    hit1, hit5, ap, scored = per_query(vectors, groups, exclude_neighbours=exclude_neighbours)
    labels = np.asarray(groups, dtype=object)
    per_group = {}
    for g in sorted(set(groups), key=natural_key):
        m = labels == g
        per_group[g] = _scores(hit1[m], hit5[m], ap[m], scored[m])
    return _scores(hit1, hit5, ap, scored), per_group


def load_groups(path: str | Path) -> dict[str, str]:
    """The groups file: a JSON object of image base name -> group id (string or integer)."""
    p = Path(path)
    if not p.is_file():
        raise RetrievalInputError(f"groups file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise RetrievalInputError(f"groups file {p} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not data:
        raise RetrievalInputError(f"groups file {p} must be a non-empty JSON object: image base name -> group id")
    bad = [k for k, v in data.items() if isinstance(v, bool) or not isinstance(v, str | int)]
    if bad:
        raise RetrievalInputError(f"groups file {p}: group ids must be strings or integers; not so for {bad[:5]}")
    return {str(k): str(v) for k, v in data.items()}


def match_images(images_dir: str | Path, groups: dict[str, str]) -> tuple[list[Path], list[str]]:
    """(image paths in natural name order, their group ids); every image must have a group (by name or stem)."""
    d = Path(images_dir)
    if not d.is_dir():
        raise RetrievalInputError(f"images folder not found: {d}")
    paths = sorted(
        (p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )
    if not paths:
        raise RetrievalInputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {d}")
    missing = [p.name for p in paths if p.name not in groups and p.stem not in groups]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise RetrievalInputError(
            f"{len(missing)} image(s) of {d} have no group in the groups file: {', '.join(missing[:5])}{more}"
        )
    labels = [groups.get(p.name, groups.get(p.stem, "")) for p in paths]
    if len(set(labels)) < 2:
        raise RetrievalInputError("the images fall in fewer than two groups: there is nothing to tell apart")
    return paths, labels


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise RetrievalInputError(f"cannot read image {path}")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def embed_paths(embedder: ImageEmbedder, paths: Sequence[Path], *, batch: int = 1) -> np.ndarray:
    """N x D unit vectors of the images, in batches when ``batch`` > 1 and the embedder offers ``embed_batch``.

    One at a time by default: on the CPU a batch of 8 cost 44 ms an image against 27 ms singly (2-core VM).
    """
    many = getattr(embedder, "embed_batch", None) if batch > 1 else None
    rows: list[np.ndarray] = []
    for i in range(0, len(paths), max(1, batch)):
        ims = [read_rgb(p) for p in paths[i : i + batch]]
        embs = many(ims) if many is not None else [embedder.embed(im) for im in ims]
        rows.extend(e.vector for e in embs)
    return np.stack(rows)


def evaluate(
    embedder: ImageEmbedder, images_dir: str | Path, groups: dict[str, str], *, exclude_neighbours: int = 0
) -> RetrievalReport:
    paths, labels = match_images(images_dir, groups)
    vectors = embed_paths(embedder, paths)
    overall, per_group = retrieval_scores(vectors, labels, exclude_neighbours=exclude_neighbours)
    return RetrievalReport(
        model=embedder.model_name,
        model_version=embedder.model_version,
        images=len(paths),
        groups=len(per_group),
        exclude_neighbours=exclude_neighbours,
        overall=overall,
        per_group=per_group,
    )


def format_report(report: RetrievalReport) -> str:
    def row(name: str, s: RetrievalScores) -> str:
        return (
            f"{name:<12} {s.queries:>7} {s.unscored:>8}  {s.recall_at_1:>8.3f} {s.recall_at_5:>8.3f} {s.mean_ap:>7.3f}"
        )

    lines = [
        f"retrieval with {report.model_version}: {report.images} images, {report.groups} groups, "
        f"neighbours within {report.exclude_neighbours} excluded",
        f"{'group':<12} {'queries':>7} {'unscored':>8}  {'recall@1':>8} {'recall@5':>8} {'mAP':>7}",
    ]
    lines += [row(g, s) for g, s in report.per_group.items()]
    lines.append(row("all", report.overall))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="scopecast eval retrieval",
        description="recall@1, recall@5 and mAP of a model's image embeddings on images grouped by lesion",
    )
    p.add_argument("--model", required=True, help="shipped model name (polyp, wound) or a path to an ONNX file")
    p.add_argument("--images", type=Path, required=True, help="folder of images")
    p.add_argument("--groups", type=Path, required=True, help="JSON: image base name -> group id")
    p.add_argument(
        "--exclude-neighbours",
        type=int,
        default=0,
        metavar="N",
        help="exclude a query's own-group images within N positions in name order (near-duplicate frames)",
    )
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the report as JSON")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    args = p.parse_args(argv)
    if args.exclude_neighbours < 0:
        print("--exclude-neighbours must be >= 0", file=sys.stderr)
        return 2
    try:  # the inputs are checked before a model is loaded, so a typo costs no model load
        groups = load_groups(args.groups)
        match_images(args.images, groups)
    except RetrievalInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from perception.model import ModelError

    try:
        embedder = _embedder(args.model, threads=args.threads, device=args.device)
        report = evaluate(embedder, args.images, groups, exclude_neighbours=args.exclude_neighbours)
    except (ModelError, RetrievalInputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_finite(asdict(report)), indent=1) + "\n")
    return 0


def _finite(value: Any) -> Any:
    """``value`` with NaN (a group with no scored query) as null: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _embedder(model: str, *, threads: int, device: str) -> ImageEmbedder:
    from perception.builtin import shipped_embedder
    from perception.embedder import OnnxImageEmbedder

    if model.endswith(".onnx") or "/" in model:
        return OnnxImageEmbedder(model, threads=threads, device=device)
    return shipped_embedder(model, threads=threads, device=device)


if __name__ == "__main__":
    raise SystemExit(main())
