"""Paired image/mask data sets and their deterministic train/validation splits.

Data never lives in the repository: it is read from ``$SCOPECAST_DATA_DIR``
(default ``<repo>/../shared/data``, see ``/work/shared/data/README.md``).

Layout understood here: an ``images/`` folder (``.jpg``/``.jpeg``/``.png``) and a
``masks/`` folder (``.png``, white = foreground) whose files pair by base name.

Splits
------
* FUSeg and Kvasir-SEG are split *by file name*: a file goes to validation when
  ``sha256(f"{seed}:{name}")`` falls below ``val_fraction`` of the hash range.
  The split of a file therefore depends only on its name and the seed, never on
  which other files are present or on their order.
* CVC-ClinicDB frames come from video sequences; neighbouring frames are nearly
  identical, so it is split *by whole sequence*: ``random.Random(seed)`` samples
  ``round(val_fraction * n_sequences)`` sequence numbers for validation.

Only numpy and OpenCV are needed here (no torch).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MASK_SUFFIXES = (".png",)
DEFAULT_SEED = 1234
DEFAULT_VAL_FRACTION = 0.15
CVC_VAL_FRACTION = 0.2

# First frame of each CVC-ClinicDB sequence 1..23 (frames 001-478), from the data README.
CVC_SEQUENCE_STARTS: tuple[int, ...] = (
    1,
    26,
    51,
    68,
    79,
    104,
    127,
    152,
    178,
    200,
    206,
    228,
    253,
    278,
    298,
    318,
    343,
    364,
    384,
    409,
    429,
    448,
    467,
)
CVC_LAST_FRAME = 478

TASKS = ("polyp", "wound")
# the `Sample.source` names each task draws its images from (see `task_split`)
TASK_SOURCES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"polyp": ("kvasir-seg", "cvc-clinicdb"), "wound": ("fuseg",)}
)


def data_root() -> Path:
    """Where the shared data lives: ``$SCOPECAST_DATA_DIR`` or ``<repo>/../shared/data``."""
    env = os.environ.get("SCOPECAST_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True)
class Sample:
    """One image and its mask, identified by source data set and base name."""

    source: str
    name: str
    image: Path
    mask: Path


def pair_folder(images_dir: str | Path, masks_dir: str | Path, *, source: str = "") -> list[Sample]:
    """Pair ``images_dir/NAME.{jpg,png}`` with ``masks_dir/NAME.png``, sorted by name.

    Images without a mask (and masks without an image) are skipped. Raises
    ``FileNotFoundError`` when either folder is missing.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"folder not found: {d}")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in MASK_SUFFIXES}
    out: dict[str, Sample] = {}
    for p in sorted(images_dir.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.stem in out:
            continue
        m = masks.get(p.stem)
        if m is not None:
            out[p.stem] = Sample(source or images_dir.parent.name, p.stem, p, m)
    return [out[k] for k in sorted(out)]


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H x W x 3)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image: {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask file as a bool array (H x W); any pixel above 127 is foreground."""
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise FileNotFoundError(f"cannot read mask: {path}")
    return m > 127


def is_val_name(name: str, *, seed: int = DEFAULT_SEED, val_fraction: float = DEFAULT_VAL_FRACTION) -> bool:
    """Whether a file name belongs to the validation part (stable hash of seed and name)."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big")
    return h < val_fraction * 2**64


def split_by_name(
    samples: Sequence[Sample], *, seed: int = DEFAULT_SEED, val_fraction: float = DEFAULT_VAL_FRACTION
) -> tuple[list[Sample], list[Sample]]:
    """(train, val) split of ``samples`` by file name; see module docstring."""
    train: list[Sample] = []
    val: list[Sample] = []
    for s in samples:
        (val if is_val_name(s.name, seed=seed, val_fraction=val_fraction) else train).append(s)
    return train, val


def cvc_sequence_of(frame: int) -> int:
    """CVC-ClinicDB sequence number (1..23) of a frame number (1..478)."""
    if not 1 <= frame <= CVC_LAST_FRAME:
        raise ValueError(f"CVC-ClinicDB frame {frame} is outside 1..{CVC_LAST_FRAME}")
    seq = 0
    for i, start in enumerate(CVC_SEQUENCE_STARTS, 1):
        if frame >= start:
            seq = i
    return seq


def cvc_val_sequences(*, seed: int = DEFAULT_SEED, val_fraction: float = CVC_VAL_FRACTION) -> tuple[int, ...]:
    """The CVC-ClinicDB sequence numbers held out for validation."""
    n = len(CVC_SEQUENCE_STARTS)
    k = max(1, round(val_fraction * n))
    return tuple(sorted(random.Random(seed).sample(range(1, n + 1), k)))


def split_by_sequence(
    samples: Sequence[Sample], *, seed: int = DEFAULT_SEED, val_fraction: float = CVC_VAL_FRACTION
) -> tuple[list[Sample], list[Sample]]:
    """(train, val) split of CVC-ClinicDB samples by whole sequence."""
    val_seqs = set(cvc_val_sequences(seed=seed, val_fraction=val_fraction))
    train: list[Sample] = []
    val: list[Sample] = []
    for s in samples:
        (val if cvc_sequence_of(int(s.name)) in val_seqs else train).append(s)
    return train, val


def kvasir_samples(root: Path | None = None) -> list[Sample]:
    root = root or data_root()
    return pair_folder(root / "kvasir-seg" / "images", root / "kvasir-seg" / "masks", source="kvasir-seg")


def cvc_samples(root: Path | None = None) -> list[Sample]:
    root = root or data_root()
    return pair_folder(root / "cvc-clinicdb" / "images", root / "cvc-clinicdb" / "masks", source="cvc-clinicdb")


def fuseg_samples(root: Path | None = None) -> list[Sample]:
    root = root or data_root()
    return pair_folder(root / "fuseg" / "train" / "images", root / "fuseg" / "train" / "masks", source="fuseg")


def task_split(task: str, *, root: Path | None = None, seed: int = DEFAULT_SEED) -> tuple[list[Sample], list[Sample]]:
    """(train, val) samples for a training task.

    ``polyp``: Kvasir-SEG (split by name) + CVC-ClinicDB sequences 1-23 (split by sequence).
    ``wound``: FUSeg ``train/`` (split by name).
    """
    if task == "polyp":
        ktr, kva = split_by_name(kvasir_samples(root), seed=seed)
        ctr, cva = split_by_sequence(cvc_samples(root), seed=seed)
        return ktr + ctr, kva + cva
    if task == "wound":
        return split_by_name(fuseg_samples(root), seed=seed)
    raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")


def load_resized(samples: Iterable[Sample], size: int, *, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Load samples resized to ``size x size``: (N,size,size,3) uint8 images, (N,size,size) uint8 0/1 masks."""
    samples = list(samples)
    imgs = np.empty((len(samples), size, size, 3), np.uint8)
    masks = np.empty((len(samples), size, size), np.uint8)
    it: Iterable[Sample] = samples
    if progress:
        from tqdm import tqdm

        it = tqdm(samples, desc=f"loading {size}px", unit="img", leave=False)
    for i, s in enumerate(it):
        imgs[i] = cv2.resize(read_image(s.image), (size, size), interpolation=cv2.INTER_AREA)
        m = read_mask(s.mask).astype(np.float32)
        masks[i] = cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR) >= 0.5
    return imgs, masks


def main(argv: list[str] | None = None) -> int:
    """``python -m perception.datasets --task polyp [--part val]``: print a split, one source/name a line."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m perception.datasets", description="Print a task's data split.")
    p.add_argument("--task", choices=TASKS, required=True)
    p.add_argument("--part", choices=("train", "val"), default="val")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = p.parse_args(argv)
    train, val = task_split(args.task, seed=args.seed)
    for s in train if args.part == "train" else val:
        print(f"{s.source}/{s.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
