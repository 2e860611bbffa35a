"""Measure per-frame latency of a model, pre- and post-processing included.

    python -m perception.bench.model --model polyp --frames 200 [--video FILE] [--threads 1]

Frames come from ``--video`` (default: the laparoscopic 720p clip in the shared
data, when present) or are synthetic 1280x720 frames. Prints median / p90 / mean
milliseconds of ``predict`` per frame and the split into network vs the rest.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from perception import datasets
from perception.model import FrameModel
from perception.segmentation_model import SegmentationModel


def load_frames(video: Path | None, n: int, size: tuple[int, int] = (1280, 720)) -> list[np.ndarray]:
    """Up to ``n`` RGB frames from a video, else synthetic frames of ``size``."""
    frames: list[np.ndarray] = []
    if video is not None and video.is_file():
        cap = cv2.VideoCapture(str(video))
        while len(frames) < n:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()
    if not frames:
        rng = np.random.default_rng(0)
        w, h = size
        base = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 8)
        frames = [np.roll(base, 4 * i, axis=1) for i in range(min(n, 32))]
    return frames


def benchmark(model: FrameModel, frames: list[np.ndarray], n: int = 200, warmup: int = 5) -> dict[str, Any]:
    """Latency statistics of ``model.predict`` over ``n`` frames (cycled)."""
    for f in frames[:warmup]:
        model.predict(f)
    if hasattr(model, "reset"):
        model.reset()
    wall = []
    for i in range(n):
        f = frames[i % len(frames)]
        t0 = time.perf_counter()
        model.predict(f)
        wall.append((time.perf_counter() - t0) * 1000.0)
    net = []
    if isinstance(model, SegmentationModel):  # the network alone, without pre- and post-processing
        x = model._preprocess(frames[0])[None]
        for _ in range(min(n, 50)):
            t0 = time.perf_counter()
            model._run(x)
            net.append((time.perf_counter() - t0) * 1000.0)
    a = np.asarray(wall)
    return {
        "frame_size": [int(frames[0].shape[1]), int(frames[0].shape[0])],
        "frames": n,
        "median_ms": float(np.median(a)),
        "p90_ms": float(np.percentile(a, 90)),
        "mean_ms": float(a.mean()),
        "fps_at_median": float(1000.0 / np.median(a)),
        "network_median_ms": float(np.median(net)) if net else None,
    }


def main(argv: list[str] | None = None) -> int:
    from perception.evaluate import load_model

    default_video = datasets.data_root() / "videos" / "laparoscopy-rvimlab-720p25.mp4"
    p = argparse.ArgumentParser(prog="python -m perception.bench.model", description="Per-frame model latency.")
    p.add_argument("--model", required=True, help="shipped model name or .onnx path")
    p.add_argument("--video", type=Path, default=default_video)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    model = load_model(args.model, threads=args.threads)
    res = benchmark(model, load_frames(args.video, min(args.frames, 100)), n=args.frames)
    res["model"] = model.info.name
    res["threads"] = args.threads
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
