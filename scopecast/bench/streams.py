"""`scopecast bench streams`: findings per second per stream, and model frames per second, as streams are added.

N camera streams (the bundled colonoscopy clip, decoded once and looped, each
stream starting at another frame) go through the real hub and pipelines with a
shipped model on onnxruntime's CPU provider, first with every stream of the model
sharing one batching model worker, then with a model thread per stream.

Fairness of the comparison: both modes run the same single onnxruntime session
per model (the shipped registry shares one across streams) with the same
intra-op thread count (`--threads`). Per-stream mode also has one calling thread
per stream (onnxruntime lets concurrent runs share the session's pool, and pre-
and post-processing of different streams overlap); batched mode has one.

Nobody watches, so nothing is drawn or encoded: the numbers are the model path's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scopecast.assets import SAMPLE_CLIP
from scopecast.bench.stream import machine_description

if TYPE_CHECKING:
    import av
    from aiortc.mediastreams import MediaStreamTrack

    from stream.metrics import StreamMetrics

MODES = ("batched", "per-stream")


@dataclass
class StreamsRunResult:
    mode: str
    streams: int
    seconds: float
    findings_per_s_min: float
    findings_per_s_median: float
    findings_per_s_max: float
    model_frames_per_s: float
    mean_batch_size: float  # 1.0 in per-stream mode
    cpu_percent: float  # this process, 100 = one core busy
    findings_per_s: list[float]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", default="1,2,4,8", help="comma list of stream counts")
    parser.add_argument("--model", default="polyp", help="shipped model run on every stream")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads of the model's session")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate of each stream's camera")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds discarded at the start of each run")
    parser.add_argument("--modes", default=",".join(MODES), help="comma list of batched, per-stream")
    parser.add_argument("--batch-max", type=int, default=8, help="batched mode: frames in one run at most")
    parser.add_argument("--batch-budget-ms", type=float, default=250.0, help="batched mode: latency budget of a run")
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench-streams"), help="folder for the JSON")


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"scopecast bench streams: {problem}")
        return 2
    counts = [int(c) for c in args.streams.split(",") if c.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    print(
        f"{args.model} on onnxruntime CPU: one session, {args.threads} intra-op thread(s), in both modes "
        f"(batched: {args.threads} pre/post thread(s) per batch; per-stream: one calling thread per stream)"
    )
    results = asyncio.run(_run_all(args, counts, modes))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine_description(),
        "model": args.model,
        "threads": args.threads,
        "fps": args.fps,
        "batch_max": args.batch_max,
        "batch_budget_ms": args.batch_budget_ms,
        "runs": [asdict(r) for r in results],
    }
    (args.out / "bench-streams.json").write_text(json.dumps(report, indent=2))
    print(format_table(results))
    print(f"\nwrote {args.out / 'bench-streams.json'}")
    return 0


def _check(args: argparse.Namespace) -> str:
    try:
        counts = [int(c) for c in args.streams.split(",") if c.strip()]
    except ValueError:
        return f"--streams must be a comma list of whole numbers, got {args.streams!r}"
    if not counts or min(counts) < 1 or max(counts) > 64:
        return f"--streams must list counts from 1 to 64, got {args.streams!r}"
    bad = [m for m in args.modes.split(",") if m.strip() and m.strip() not in MODES]
    if bad or not args.modes.strip():
        return f"unknown mode {', '.join(bad) or '(none)'}: choose from {', '.join(MODES)}"
    if args.seconds <= 0 or args.warmup < 0 or args.fps <= 0 or args.threads < 1 or args.batch_max < 1:
        return "--seconds, --fps, --threads and --batch-max must be positive (--warmup may be 0)"
    if args.batch_budget_ms <= 0:
        return "--batch-budget-ms must be positive"
    from perception.builtin import shipped_models

    if args.model not in shipped_models():
        return f"no shipped model named {args.model!r} (shipped: {', '.join(shipped_models()) or 'none'})"
    return ""


async def _run_all(args: argparse.Namespace, counts: list[int], modes: list[str]) -> list[StreamsRunResult]:
    frames = await asyncio.get_running_loop().run_in_executor(None, _clip_frames, SAMPLE_CLIP, 50)
    results = []
    for count in counts:
        for mode in modes:
            print(f"running {count} stream(s), {mode} ...", flush=True)
            results.append(await _run_one(mode, count, frames, args))
    return results


async def _run_one(mode: str, count: int, frames: list[av.VideoFrame], args: argparse.Namespace) -> StreamsRunResult:
    from perception.builtin import register_builtin_models
    from perception.registry import ModelRegistry
    from stream.hub import StreamHub
    from stream.metrics import StreamMetrics
    from stream.model_worker import BatchPolicy
    from stream.pipeline import PipelineConfig

    registry = ModelRegistry()  # a fresh one per run: the model's session (and its threads) is that run's own
    register_builtin_models(registry, threads=args.threads, device="cpu")
    metrics = StreamMetrics()
    batching = BatchPolicy(args.batch_max, args.batch_budget_ms / 1000) if mode == "batched" else None
    hub = StreamHub(
        lambda name: lambda: registry.create(name),
        args.model,
        PipelineConfig(),
        metrics,
        batching=batching,
    )
    tracks = [looped_frames_track(frames, args.fps, start=i * len(frames) // count) for i in range(count)]
    entries = [hub.add_camera_stream(track, f"bench-{i}") for i, track in enumerate(tracks)]
    try:
        await asyncio.sleep(args.warmup)
        before = [_findings(metrics, e.stream_id) for e in entries]
        batch_before = _batches(metrics)
        wall0, cpu0 = time.monotonic(), time.process_time()
        await asyncio.sleep(args.seconds)
        wall = time.monotonic() - wall0
        cpu = time.process_time() - cpu0
        after = [_findings(metrics, e.stream_id) for e in entries]
        batch_after = _batches(metrics)
    finally:
        for track in tracks:
            track.stop()
        await hub.close()
    rates = [(a - b) / wall for a, b in zip(after, before)]
    runs, frames_in_runs = batch_after[0] - batch_before[0], batch_after[1] - batch_before[1]
    return StreamsRunResult(
        mode=mode,
        streams=count,
        seconds=round(wall, 2),
        findings_per_s_min=round(min(rates), 2),
        findings_per_s_median=round(statistics.median(rates), 2),
        findings_per_s_max=round(max(rates), 2),
        model_frames_per_s=round(sum(rates), 2),
        mean_batch_size=round(frames_in_runs / runs, 2) if runs else 1.0,
        cpu_percent=round(100 * cpu / wall, 1),
        findings_per_s=[round(r, 2) for r in rates],
    )


def _findings(metrics: StreamMetrics, stream_id: str) -> float:
    return metrics.registry.get_sample_value("scopecast_findings_total", {"stream": stream_id}) or 0.0


def _batches(metrics: StreamMetrics) -> tuple[float, float]:
    """(model runs, frames in them) of the shared model workers so far, all models together."""
    count = total = 0.0
    for family in metrics.model_batch_size.collect():
        for sample in family.samples:
            if sample.name.endswith("_count"):
                count += sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
    return count, total


def _clip_frames(path: Path, limit: int) -> list[av.VideoFrame]:
    """The clip's first `limit` frames, decoded once, as yuv420p (what a WebRTC camera track delivers)."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.reformat(format="yuv420p"))
            if len(frames) >= limit:
                break
    if not frames:
        raise RuntimeError(f"no video frames in {path}")
    return frames + frames[-2:0:-1]  # forwards then backwards: no jump at the loop


def looped_frames_track(frames: list[av.VideoFrame], fps: float, start: int = 0) -> MediaStreamTrack:
    """A camera track (what the hub's `pump_track` reads) playing decoded frames in a loop at `fps`, clock-paced.
    Streams share the frame objects and only read them (stream.frames converts them thread-safely)."""
    from aiortc.mediastreams import MediaStreamError
    from aiortc.mediastreams import MediaStreamTrack as Base

    class LoopedFrames(Base):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self._index = start
            self._sent = 0
            self._started: float | None = None

        async def recv(self) -> av.VideoFrame:
            if self.readyState != "live":
                raise MediaStreamError
            now = time.monotonic()
            if self._started is None:
                self._started = now
            due = self._started + self._sent / fps
            if due > now:
                await asyncio.sleep(due - now)
            frame = frames[self._index % len(frames)]
            self._index += 1
            self._sent += 1
            return frame

    return LoopedFrames()


def format_table(results: list[StreamsRunResult]) -> str:
    lines = [
        f"\n{'streams':>7} {'mode':10} {'findings/s per stream (min / median / max)':>43} "
        f"{'model frames/s':>15} {'batch':>6} {'CPU %':>6}"
    ]
    for r in results:
        per_stream = f"{r.findings_per_s_min:.1f} / {r.findings_per_s_median:.1f} / {r.findings_per_s_max:.1f}"
        lines.append(
            f"{r.streams:>7} {r.mode:10} {per_stream:>43} {r.model_frames_per_s:>15.1f} "
            f"{r.mean_batch_size:>6.2f} {r.cpu_percent:>6.0f}"
        )
    by_key = {(r.streams, r.mode): r for r in results}
    gains = [
        f"  {n} stream(s): {by_key[(n, 'batched')].model_frames_per_s / by_key[(n, 'per-stream')].model_frames_per_s:.2f}x"
        for n in sorted({r.streams for r in results})
        if (n, "batched") in by_key and (n, "per-stream") in by_key and by_key[(n, "per-stream")].model_frames_per_s > 0
    ]
    if gains:
        lines += ["\nmodel frames/s, batched over per-stream:", *gains]
    lines.append(f"({os.cpu_count()} CPU cores; CPU % is this process's, 100 = one core)")
    return "\n".join(lines)
