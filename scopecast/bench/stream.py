"""`scopecast bench stream`: glass-to-glass latency of the WebRTC pipeline on this machine.

A stamped camera (frame index drawn into the pixels) is published to an
in-process server over loopback with aiortc; the annotated track that comes
back is decoded and each stamp read, so every received frame's latency is
known exactly. Each configuration runs twice: as a plain relay ("pass-through":
the same WebRTC decode and encode, no model, no overlay) and with the full
pipeline (model + overlay). Added latency is full minus pass-through.

Both peers run on this machine, so the client's own encode and decode share the
CPU with the server's: on a small box the numbers are pessimistic.

`--room` measures a consult call instead: the stamped camera is the patient's,
a second peer (the clinician, with its own 480p camera going the other way) receives it
through a consult room, so both directions' codecs load the machine as in a real call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from scopecast.assets import LAPAROSCOPY_CLIP

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack
    from av import VideoFrame
    from fastapi import FastAPI

RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080), "480p": (640, 480)}


@dataclass
class RunResult:
    resolution: str
    codec: str
    mode: str  # "pass-through" or "full"
    model: str
    seconds: float
    sent: int
    received: int
    dropped: int
    freezes_over_100ms: int
    output_fps: float
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    latency_ms_max: float
    latencies_ms: list[float]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resolutions", default="720p,1080p", help="comma list of 480p, 720p, 1080p")
    parser.add_argument("--codecs", default="VP8,H264", help="comma list of VP8, H264")
    parser.add_argument("--model", default="polyp", help="registered model for the full pipeline")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--model-fps", type=float, default=0.0, help="cap on model runs per second (0: no cap)")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds discarded at the start of each run")
    parser.add_argument(
        "--content",
        choices=["laparoscopy", "synthetic"],
        default="laparoscopy",
        help="what the camera shows: the bundled real clip, or scrolling random blocks",
    )
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench-stream"), help="folder for JSON and PNG")
    parser.add_argument(
        "--room",
        action="store_true",
        help="measure patient-to-clinician latency through a consult room (model: the consult model)",
    )


def run(args: argparse.Namespace) -> int:
    resolutions = [r.strip() for r in args.resolutions.split(",") if r.strip()]
    codecs = [c.strip().upper() for c in args.codecs.split(",") if c.strip()]
    bad = [r for r in resolutions if r not in RESOLUTIONS] + [c for c in codecs if c not in ("VP8", "H264")]
    if bad:
        print(f"scopecast bench stream: unknown resolution or codec: {', '.join(bad)}")
        return 2
    results = asyncio.run(_run_all(args, resolutions, codecs))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine_description(),
        "fps": args.fps,
        "content": args.content,
        "model_fps_cap": args.model_fps,
        "consult_room": args.room,
        "runs": [asdict(r) for r in results],
    }
    (args.out / "bench-stream.json").write_text(json.dumps(report, indent=2))
    _print_table(results)
    _plot(results, args.out / "bench-stream.png")
    print(f"\nwrote {args.out / 'bench-stream.json'} and {args.out / 'bench-stream.png'}")
    return 0


async def _run_all(args: argparse.Namespace, resolutions: list[str], codecs: list[str]) -> list[RunResult]:
    results = []
    for res in resolutions:
        width, height = RESOLUTIONS[res]
        background = _background(args.content, width, height)
        for codec in codecs:
            for mode in ("pass-through", "full"):
                model = "none" if mode == "pass-through" else args.model
                print(f"running {res} {codec} {mode} ...", flush=True)
                results.append(await _run_one(res, width, height, codec, mode, model, background, args))
    return results


async def _run_one(
    res: str,
    width: int,
    height: int,
    codec: str,
    mode: str,
    model: str,
    background: Callable[[int], np.ndarray],
    args: argparse.Namespace,
) -> RunResult:
    from scopecast.app import create_app
    from scopecast.settings import Settings
    from stream.rooms import RoomGrant
    from stream.testing import client
    from stream.testing.framestamp import StampedVideoTrack, read_stamp

    async def two_sides(room_id: str, credential: str) -> RoomGrant:
        return RoomGrant(room_id, "patient" if credential == "bench-patient" else "clinician")

    access, bench_token = bench_access()

    settings = Settings(
        serve_sample=False,
        model=model,
        consult_model=model,
        video_codec=codec,
        log_level="WARNING",
        max_inference_fps=args.model_fps,
    )
    app = create_app(settings, room_authorizer=two_sides if args.room else None, stream_access=access)
    async with serve_locally(app) as addr:
        camera = StampedVideoTrack(width, height, args.fps, background)
        if args.room:
            url = f"ws://{addr}/ws"
            flat = np.full((480, 640, 3), (200, 140, 60), np.uint8)
            patient = await client.join(url, "bench-room", "bench-patient", camera, codec=codec)
            clinician_camera = StampedVideoTrack(640, 480, args.fps, lambda _i: flat)
            clinician = await client.join(url, "bench-room", "bench-clinician", clinician_camera, codec=codec)
            session, drain = (
                clinician,
                patient,
            )  # measure what the clinician receives; keep the patient's incoming flowing
        else:
            session = await client.publish(f"ws://{addr}/ws", camera, codec=codec, token=bench_token)
            drain = None
        drainer = asyncio.create_task(_drain(drain.track)) if drain is not None else None
        received: list[tuple[int, float]] = []
        try:
            start = time.monotonic()
            end = start + args.warmup + args.seconds
            while time.monotonic() < end:
                frame = cast("VideoFrame", await asyncio.wait_for(session.track.recv(), 10))
                now = time.monotonic()
                if now - start < args.warmup:
                    continue
                index = read_stamp(frame.to_ndarray(format="gray"))
                if index and index in camera.sent_at:  # a blank or card frame reads as 0
                    received.append((index, now))
        finally:
            if drainer is not None:
                drainer.cancel()
            await session.close()
            if drain is not None:
                await drain.close()
    measured = [i for i, t in camera.sent_at.items() if t - start >= args.warmup and t <= end - 0.5]
    got = {i for i, _ in received}
    latencies = [1000 * (t - camera.sent_at[i]) for i, t in received]
    times = [t for _, t in received]
    gaps = np.diff(times) if len(times) > 1 else np.array([])
    lat = np.array(latencies) if latencies else np.array([float("nan")])
    return RunResult(
        resolution=res,
        codec=codec,
        mode=mode,
        model=model,
        seconds=args.seconds,
        sent=len(measured),
        received=len(received),
        dropped=sum(1 for i in measured if i not in got),
        freezes_over_100ms=int((gaps > 0.1).sum()),
        output_fps=len(received) / args.seconds,
        latency_ms_p50=float(np.percentile(lat, 50)),
        latency_ms_p95=float(np.percentile(lat, 95)),
        latency_ms_p99=float(np.percentile(lat, 99)),
        latency_ms_max=float(lat.max()),
        latencies_ms=[round(x, 2) for x in latencies],
    )


async def _drain(track: MediaStreamTrack) -> None:
    while True:
        await track.recv()


def bench_access():  # -> (stream.access.StreamAccess, token)
    """Sign-in for a bench's own server, on loopback for one run: one random token stands for a signed-in clinician."""
    from stream.access import AccessDenied, Principal, StreamAccess

    token = secrets.token_urlsafe(24)

    async def bench_clinician(presented: str) -> Principal:
        if not secrets.compare_digest(presented, token):
            raise AccessDenied("invalid_session", "not the bench's token")
        return Principal(user_id=0, role="bench", may_watch=True, may_publish=True)

    return StreamAccess(bench_clinician, "scopecast_bench_session"), token


def serve_locally(app: FastAPI) -> AbstractAsyncContextManager[str]:
    """Serve `app` on a free loopback port for one bench run; yields "127.0.0.1:PORT"."""
    import contextlib
    import socket

    import uvicorn

    @contextlib.asynccontextmanager
    async def serving() -> AsyncIterator[str]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        try:
            yield f"127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            await task
            sock.close()

    return serving()


def _background(content: str, width: int, height: int) -> Callable[[int], np.ndarray]:
    from stream.testing.framestamp import moving_pattern

    if content == "synthetic":
        return moving_pattern(width, height)
    import av
    import cv2

    frames = []
    with av.open(str(LAPAROSCOPY_CLIP)) as container:
        for frame in container.decode(video=0):
            frames.append(cv2.resize(frame.to_ndarray(format="bgr24"), (width, height)))
            if len(frames) >= 75:  # 3 s of real motion, played forwards then backwards
                break
    cycle = frames + frames[-2:0:-1]
    return lambda index: cycle[index % len(cycle)]


def machine_description() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def _print_table(results: list[RunResult]) -> None:
    print(f"\n{'res':6} {'codec':5} {'mode':13} {'p50':>7} {'p95':>7} {'p99':>7} {'fps':>6} {'drop':>5} {'frz':>4}")
    for r in results:
        print(
            f"{r.resolution:6} {r.codec:5} {r.mode:13} {r.latency_ms_p50:7.1f} {r.latency_ms_p95:7.1f} "
            f"{r.latency_ms_p99:7.1f} {r.output_fps:6.1f} {r.dropped:5d} {r.freezes_over_100ms:4d}"
        )
    print("\nadded by model + overlay (full minus pass-through), ms:")
    by_key = {(r.resolution, r.codec, r.mode): r for r in results}
    for (res, codec, mode), full in by_key.items():
        if mode != "full" or (res, codec, "pass-through") not in by_key:
            continue
        base = by_key[(res, codec, "pass-through")]
        print(
            f"  {res} {codec}: p50 {full.latency_ms_p50 - base.latency_ms_p50:+.1f}  "
            f"p95 {full.latency_ms_p95 - base.latency_ms_p95:+.1f}  p99 {full.latency_ms_p99 - base.latency_ms_p99:+.1f}"
        )


def _plot(results: list[RunResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_cdf, ax_fps) = plt.subplots(1, 2, figsize=(13, 5))
    for r in results:
        if not r.latencies_ms:
            continue
        xs = np.sort(r.latencies_ms)
        ax_cdf.plot(
            xs,
            np.linspace(0, 1, len(xs)),
            label=f"{r.resolution} {r.codec} {r.mode}",
            linestyle="--" if r.mode == "pass-through" else "-",
        )
    ax_cdf.set_xlabel("glass-to-glass latency (ms)")
    ax_cdf.set_ylabel("fraction of frames")
    ax_cdf.set_title("Latency CDF (loopback, both peers on this machine)")
    ax_cdf.grid(alpha=0.3)
    ax_cdf.legend(fontsize=8)
    labels = [f"{r.resolution}\n{r.codec}\n{'relay' if r.mode == 'pass-through' else 'full'}" for r in results]
    ax_fps.bar(
        range(len(results)),
        [r.output_fps for r in results],
        color=["#999" if r.mode == "pass-through" else "#2a7" for r in results],
    )
    ax_fps.set_xticks(range(len(results)), labels, fontsize=7)
    ax_fps.set_ylabel("output fps")
    ax_fps.set_title("Output frame rate")
    ax_fps.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
