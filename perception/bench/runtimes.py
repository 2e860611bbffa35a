"""Latency and throughput per runtime x batch size x frame size, pre- and post-processing included.

    python -m perception.bench.runtimes [--model polyp|PATH.onnx] [--runtimes cpu,torch]
        [--batches 1,4] [--sizes 512x512,1280x720,1920x1080] [--iters 30] [--threads 1] [--markdown]

For every combination it times ``SegmentationModel.predict_batch`` on a
batch of synthetic frames (resize + normalise + network + components +
tracking) and the network alone (``runtime.run`` on the preprocessed batch),
and prints p50 / p99 milliseconds per batch, frames per second at the median,
the process RSS after the run and its peak so far, and on CUDA the peak GPU
memory allocated by torch plus NVML's used memory.

Without ``--model`` it uses the shipped ``polyp`` model when present, else a
randomly initialised LiteUNet of the shipped architecture (256 x 256 input)
exported to a temporary folder: the same cost, meaningless masks.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from perception.model import ModelError

if TYPE_CHECKING:  # imported where the bench runs, so that --help does not load onnxruntime
    from perception.segmentation_model import SegmentationModel

SIZES = ((512, 512), (1280, 720), (1920, 1080))


def _resized(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    """An RGB frame at w x h (area averaging to shrink, bilinear to enlarge)."""
    if rgb.shape[:2] == (h, w):
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if rgb.shape[1] > w else cv2.INTER_LINEAR)


def video_frames(video: Path | None, n: int, w: int, h: int) -> list[np.ndarray] | None:
    """``n`` consecutive frames of ``video`` resized to w x h, or None when it cannot be read."""
    if video is None or not Path(video).is_file():
        return None
    cap = cv2.VideoCapture(str(video))
    frames: list[np.ndarray] = []
    while len(frames) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(_resized(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), w, h))
    cap.release()
    return frames if len(frames) == n else None


def domain_frames(model: SegmentationModel, n: int, w: int, h: int) -> list[np.ndarray] | None:
    """``n`` of the model's own validation images resized to w x h, or None without the data or a training task.

    The content the model is for: on foreign content its gate withholds the findings, and a benchmark on such frames
    would leave out the components, outlines and tracking that every frame it serves pays for.
    """
    from perception import datasets

    training = model.meta.extra.get("training")
    if not isinstance(training, dict) or training.get("task") not in datasets.TASKS:
        return None
    try:
        seed = int(training.get("split_seed") or datasets.DEFAULT_SEED)
        _, val = datasets.task_split(str(training["task"]), seed=seed)
    except (FileNotFoundError, ValueError):
        return None
    frames = [_resized(datasets.read_image(sample.image), w, h) for sample in val[:n]]
    return frames if len(frames) == n else None


def bench_frames(
    model: SegmentationModel, n: int, w: int, h: int, video: Path | None, fallback_video: Path | None
) -> tuple[list[np.ndarray], str]:
    """(frames, where they came from): `video` when given, else the model's own validation images, else
    `fallback_video`, else synthetic frames."""
    if video is not None:
        frames = video_frames(video, n, w, h)
        if frames is not None:
            return frames, Path(video).name
    else:
        frames = domain_frames(model, n, w, h)
        if frames is not None:
            return frames, "validation images"
        frames = video_frames(fallback_video, n, w, h)
        if frames is not None:
            return frames, Path(str(fallback_video)).name
    return synthetic_frames(n, w, h), "synthetic"


def synthetic_frames(n: int, w: int, h: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (max(8, h // 16), max(8, w // 16), 3), dtype=np.uint8)
    frame = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    return [np.roll(frame, 7 * i, axis=1) for i in range(n)]


def checkpoint_model(checkpoint: Path, tmp: Path) -> Path:
    """Export a training checkpoint to a temporary ONNX (+ sidecar) for benchmarking."""
    import shutil

    from perception.export import export_onnx
    from perception.net_loading import load_checkpoint_net

    copy = tmp / "ckpt.pt"
    shutil.copyfile(checkpoint, copy)  # training may rewrite the file meanwhile
    net, ckpt = load_checkpoint_net(copy)
    size = int(ckpt["config"]["input_size"])
    path = tmp / f"{Path(checkpoint).parent.name or 'model'}.onnx"
    export_onnx(net, path, (size, size))
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "name": path.stem,
                "labels": ["object"],
                "input_size": [size, size],
                "arch": ckpt["arch"],
                "mean": list(ckpt.get("mean", (0.485, 0.456, 0.406))),
                "std": list(ckpt.get("std", (0.229, 0.224, 0.225))),
                "threshold": 0.5,
            }
        )
    )
    return path


def default_model(tmp: Path) -> Path:
    from perception.builtin import shipped_models

    shipped = shipped_models()
    if "polyp" in shipped:
        return shipped["polyp"]
    import torch

    from perception.export import export_onnx
    from perception.nets import build_net

    torch.manual_seed(0)
    try:  # the architecture training uses by default (that of the shipped models)
        from perception.training import TrainConfig

        cfg = TrainConfig()
        arch, size = {"arch": cfg.arch, **cfg.arch_kwargs}, int(cfg.input_size)
    except Exception:  # pragma: no cover - training extras missing
        arch, size = {"arch": "liteunet"}, 256
    net = build_net(arch["arch"], **{k: tuple(v) if isinstance(v, list) else v for k, v in arch.items() if k != "arch"})
    g = torch.Generator().manual_seed(0)
    for m in net.modules():  # trained-like BatchNorm statistics (defaults fold into identical zero biases)
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None  # BatchNorm2d tracks them by default
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    net.eval()
    path = tmp / "liteunet-random.onnx"
    export_onnx(net, path, (size, size))
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "name": "liteunet-random",
                "labels": ["object"],
                "input_size": [size, size],
                "arch": arch,
                "threshold": 0.5,
            }
        )
    )
    return path


def _rss_mb() -> float:
    try:
        import psutil

        rss: float = psutil.Process().memory_info().rss / 2**20
        return rss
    except ImportError:  # pragma: no cover
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _gpu_memory() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        import torch

        if torch.cuda.is_available():
            out["torch_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    except ImportError:  # pragma: no cover
        pass
    from perception.runtimes.gpu_telemetry import gpu_stats

    s = gpu_stats(0)
    if s is not None:
        out["nvml_used_mb"] = s.memory_used_mb
        out["gpu_name"] = s.name
    return out


def _pct(a: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(a), q))


def bench_one(model: SegmentationModel, frames: list[np.ndarray], iters: int, warmup: int) -> dict[str, Any]:
    for _ in range(warmup):
        model.predict_batch(frames)
    full = []
    for _ in range(iters):
        model.reset()
        t0 = time.perf_counter()
        model.predict_batch(frames)
        full.append((time.perf_counter() - t0) * 1000.0)
    x = np.stack([model._preprocess(f) for f in frames])
    net = []
    for _ in range(iters):
        t0 = time.perf_counter()
        model._run(x)
        net.append((time.perf_counter() - t0) * 1000.0)
    p50 = _pct(full, 50)
    return {
        "p50_ms": p50,
        "p99_ms": _pct(full, 99),
        "fps": len(frames) * 1000.0 / p50,
        "network_p50_ms": _pct(net, 50),
        "network_p99_ms": _pct(net, 99),
    }


def run_bench(
    model_path: Path,
    runtimes: list[str],
    batches: list[int],
    sizes: list[tuple[int, int]],
    iters: int,
    warmup: int,
    threads: int,
    log: Callable[[str], None] = print,
    video: Path | None = None,
    fallback_video: Path | None = None,
) -> list[dict[str, Any]]:
    """`video`: frames from it; None: the model's own validation images, else `fallback_video`, else synthetic."""
    from perception.segmentation_model import SegmentationModel

    rows = []
    for kind in runtimes:
        try:
            model = SegmentationModel(model_path, threads=threads, runtime=kind)
        except ModelError as e:
            log(f"# {kind}: not available here: {e}")
            continue
        for w, h in sizes:
            for b in batches:
                frames, source = bench_frames(model, b, w, h, video, fallback_video)
                res = bench_one(model, frames, iters, warmup)
                row = {
                    "runtime": model.runtime_name,
                    "batch": b,
                    "frame": f"{w}x{h}",
                    "input": f"{model.input_size[0]}x{model.input_size[1]}",
                    "threads": threads,
                    "frames_from": source,
                    **res,
                    "rss_mb": _rss_mb(),
                    "peak_rss_mb": _peak_rss_mb(),
                    **_gpu_memory(),
                }
                rows.append(row)
                log(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}))
        model.close()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| runtime | frame | batch | p50 ms/batch | p99 ms/batch | frames/s | network p50 ms | RSS MB (peak) |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        gpu = f", GPU {r['torch_peak_allocated_mb']:.0f} MB" if "torch_peak_allocated_mb" in r else ""
        lines.append(
            f"| {r['runtime']} | {r['frame']} | {r['batch']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['fps']:.1f} | {r['network_p50_ms']:.1f} | {r['rss_mb']:.0f} ({r['peak_rss_mb']:.0f}){gpu} |"
        )
    return "\n".join(lines)


_NAMED_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "480p": (640, 480)}


def _size(text: str) -> tuple[int, int]:
    """'512' (square), '720p', '1080p' or 'WxH'; anything else is refused with the accepted forms."""
    t = text.strip().lower()
    if t in _NAMED_SIZES:
        return _NAMED_SIZES[t]
    try:
        if t.isdigit():
            return int(t), int(t)
        w, h = t.split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"frame size {text!r}: use 512, 720p, 1080p or WIDTHxHEIGHT") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--model", default=None, help="shipped model name or .onnx path (default: polyp or a random LiteUNet)"
    )
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="benchmark a training checkpoint (exported to a temp ONNX)"
    )
    p.add_argument(
        "--video",
        type=Path,
        default=None,
        help="frames from this video, resized to each size (default: the model's own validation images when the "
        "shared data is present, else the laparoscopy clip there, else synthetic frames)",
    )
    p.add_argument(
        "--runtimes", default="cpu,torch", help="comma list of runtime kinds (auto, cpu, cuda, torch, tensorrt, triton)"
    )
    p.add_argument("--batches", default="1,4")
    p.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES))
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--markdown", action="store_true", help="also print a markdown table")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.checkpoint is not None:
            model_path = checkpoint_model(args.checkpoint, Path(tmp))
        elif args.model is None:
            model_path = default_model(Path(tmp))
        else:
            from perception.builtin import shipped_models

            model_path = shipped_models().get(args.model, Path(args.model))
        if not Path(model_path).is_file():
            print(f"model not found: {model_path}", file=sys.stderr)
            return 2
        from perception import datasets

        fallback = datasets.data_root() / "videos" / "laparoscopy-rvimlab-720p25.mp4"
        source = args.video or "the model's validation images (else the laparoscopy clip, else synthetic frames)"
        print(f"# model {model_path}; frames from {source}", flush=True)
        rows = run_bench(
            Path(model_path),
            [k.strip() for k in args.runtimes.split(",") if k.strip()],
            [int(b) for b in args.batches.split(",")],
            [_size(s) for s in args.sizes.split(",")],
            args.iters,
            args.warmup,
            args.threads,
            log=lambda s: print(s, flush=True),
            video=args.video,
            fallback_video=fallback,
        )
    if args.markdown:
        print(markdown(rows))
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
