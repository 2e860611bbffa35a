"""`scopecast bench viewers`: what each extra viewer of one stream costs, watched directly from scopecast (one
encode per viewer) and through Janus (one encode for all).

The server runs in its own process (so its CPU is its own); this process publishes a stamped 720p30 camera to it
and opens N viewers. The camera is encoded once before the runs and sent as packets from a process of its own
(scopecast.bench.bench_camera), so neither a live encode nor fifty viewers in this event loop disturb the source the
server is measured on; the harness's own CPU (camera and viewers) is printed too, as what the viewers cost the
machine. Most viewers count frames without decoding them (stream.testing.janus_viewer), so one box can
host fifty; a few sample viewers decode and read each frame's stamp for glass-to-glass latency. Per viewer count
and path it prints scopecast's and Janus's CPU (% of one core), received fps per counting viewer (min / median),
and the sample's latency (median, and added over the one-viewer direct run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scopecast.bench.stream import machine_description
from stream.janus.local_config import LocalJanus, LocalJanusConfig, free_tcp_port, write_config
from stream.testing.framestamp import PreEncodedStampedTrack


@dataclass
class ViewersRun:
    path: str  # "direct" or "janus"
    viewers: int
    seconds: float
    scopecast_cpu_pct: float
    janus_cpu_pct: float | None
    fps_min: float
    fps_median: float
    latency_ms_p50: float | None  # the decoding sample's median glass-to-glass latency
    latency_added_ms: float | None = None  # over the one-viewer direct run
    bench_cpu_pct: float = 0.0  # the harness: the camera's process and this one (every viewer)
    sample_viewers: int = 0
    connected: int = 0
    errors: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--viewers", default="1,10,50", help="comma list of viewer counts")
    parser.add_argument("--paths", default="direct,janus", help="comma list of direct, janus")
    parser.add_argument("--janus-url", default=None, help="a running Janus (ws://...); default: start one on loopback")
    parser.add_argument("--janus-admin-url", default=None, help="its admin API (with --janus-url)")
    parser.add_argument("--janus-admin-secret", default=None, help="its admin secret (with --janus-url)")
    parser.add_argument("--janus-room-admin-key", default=None, help="its VideoRoom admin_key, if it has one")
    parser.add_argument("--resolution", default="1280x720")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--model", default="none", help="model the server runs on the stream ('none': plain relay)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds after the viewers connect, not measured")
    parser.add_argument("--sample", type=int, default=2, help="viewers that decode, for latency")
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench-viewers"), help="folder for the JSON")


def run(args: argparse.Namespace) -> int:
    try:
        counts = [int(c) for c in args.viewers.split(",") if c.strip()]
        width, height = (int(v) for v in args.resolution.lower().split("x"))
    except ValueError:
        print("scopecast bench viewers: --viewers is a comma list of numbers, --resolution WIDTHxHEIGHT")
        return 2
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not counts or min(counts) < 1 or any(p not in ("direct", "janus") for p in paths):
        print("scopecast bench viewers: viewer counts must be >= 1 and paths direct or janus")
        return 2
    if args.janus_url and not (args.janus_admin_url and args.janus_admin_secret):
        print("scopecast bench viewers: --janus-url needs --janus-admin-url and --janus-admin-secret")
        return 2
    results = asyncio.run(_run_all(args, paths, counts, (width, height)))
    baseline = next((r.latency_ms_p50 for r in results if r.path == "direct" and r.viewers == 1), None)
    for r in results:
        if baseline is not None and r.latency_ms_p50 is not None:
            r.latency_added_ms = r.latency_ms_p50 - baseline
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine_description(), "resolution": args.resolution, "fps": args.fps, "model": args.model}
    report["runs"] = [asdict(r) for r in results]
    (args.out / "bench-viewers.json").write_text(json.dumps(report, indent=2))
    _print_table(results)
    print(f"\nwrote {args.out / 'bench-viewers.json'}")
    return 0


async def _run_all(
    args: argparse.Namespace, paths: list[str], counts: list[int], size: tuple[int, int]
) -> list[ViewersRun]:
    results: list[ViewersRun] = []
    print(f"encoding {args.seconds + args.warmup + 30:.0f} s of the stamped camera ...", flush=True)
    camera = await asyncio.get_running_loop().run_in_executor(
        None, lambda: PreEncodedStampedTrack.encode(size[0], size[1], args.fps, seconds=args.seconds + args.warmup + 30)
    )
    with tempfile.TemporaryDirectory(prefix="scopecast-bench-viewers-") as tmp:
        packets = Path(tmp) / "camera.packets"
        camera.save(packets)
        janus: LocalJanus | None = None
        janus_config: LocalJanusConfig | None = None
        if "janus" in paths and args.janus_url is None:
            janus_config = write_config(Path(tmp) / "janus")
            janus = LocalJanus(janus_config)
            janus.start()
        try:
            for path in paths:
                for count in counts:
                    print(f"running {path} with {count} viewer(s) ...", flush=True)
                    results.append(await _run_one(args, path, count, packets, janus, janus_config))
        finally:
            if janus is not None:
                janus.stop()
    return results


def _janus_env(args: argparse.Namespace, config: LocalJanusConfig | None) -> dict[str, str]:
    if args.janus_url:
        return {
            "SCOPECAST_JANUS_URL": args.janus_url,
            "SCOPECAST_JANUS_ADMIN_URL": args.janus_admin_url,
            "SCOPECAST_JANUS_ADMIN_SECRET": args.janus_admin_secret,
        } | ({"SCOPECAST_JANUS_ROOM_ADMIN_KEY": args.janus_room_admin_key} if args.janus_room_admin_key else {})
    assert config is not None
    return {
        "SCOPECAST_JANUS_URL": config.ws_url,
        "SCOPECAST_JANUS_ADMIN_URL": config.admin_url,
        "SCOPECAST_JANUS_ADMIN_SECRET": config.admin_secret,
        "SCOPECAST_JANUS_ROOM_ADMIN_KEY": config.room_admin_key,
    }


@asynccontextmanager
async def _server(env: dict[str, str], token: str) -> AsyncIterator[tuple[str, int]]:
    port = free_tcp_port()
    full_env = {**os.environ, **env, "BENCH_SERVER_TOKEN": token, "BENCH_SERVER_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "scopecast.bench.bench_server"], env=full_env)
    addr = f"127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=f"http://{addr}") as http:
            for _ in range(300):
                if proc.poll() is not None:
                    raise RuntimeError(f"the bench server exited with {proc.returncode}")
                with suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield addr, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _run_one(
    args: argparse.Namespace,
    path: str,
    count: int,
    packets: Path,
    janus: LocalJanus | None,
    janus_config: LocalJanusConfig | None,
) -> ViewersRun:
    token = secrets.token_urlsafe(24)
    env = {
        "SCOPECAST_SERVE_SAMPLE": "false",
        "SCOPECAST_MODEL": args.model,
        "SCOPECAST_MAX_SESSIONS": str(count + 8),
        "SCOPECAST_MAX_SESSIONS_PER_ADDRESS": str(count + 8),
        "SCOPECAST_LOG_LEVEL": "WARNING",
        # Keyword intent matching: loading the MiniLM matcher imports torch and transformers on a worker thread for
        # half a minute after start, which would land in the measured window (profiled: 40 % of the server's samples).
        "SCOPECAST_VLM__USE_EMBEDDINGS": "false",
    }
    if path == "janus":
        env.update(_janus_env(args, janus_config))
    run = ViewersRun(path, count, args.seconds, 0.0, None, 0.0, 0.0, None)
    send_log = packets.with_suffix(f".{path}-{count}.log")
    async with _server(env, token) as (addr, server), _camera(addr, token, packets, send_log) as (stream_id, camera):
        counters: list[list[float]] = []
        closers: list[Any] = []
        samples: list[Any] = []
        stamps_seen: list[tuple[int, float]] = []
        window_stamps: list[tuple[int, float]] = []  # the stamps decoded in the measured window
        readers: list[asyncio.Task[None]] = []
        try:
            sample_count = min(args.sample, count)
            for index in range(count):
                # Beyond the `--sample` viewers that decode and read stamps, viewers count RTP frames without
                # decoding, on both paths: fifty Python decoders would measure the harness, not the server.
                decode = index < sample_count
                try:
                    track, close = await _open_viewer(path, addr, token, stream_id, decode, counters)
                except Exception as exc:  # a refused or failed viewer is reported, the run goes on
                    run.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                closers.append(close)
                run.connected += 1
                if decode:
                    samples.append(track)
            run.sample_viewers = len(samples)
            # The decoding viewers read from the moment they connect: aiortc queues decoded frames without bound, so
            # a reader started later would count the warm-up's backlog as frames of the measured window.
            for track in samples:
                decoded: list[float] = []
                counters.append(decoded)
                readers.append(asyncio.create_task(_read_stamps(track, stamps_seen, decoded)))
            await asyncio.sleep(args.warmup)
            janus_proc = janus.proc.pid if janus is not None and janus.proc is not None else None
            harness = (os.getpid(), camera)
            cpu_before = _cpu_seconds(server), _cpu_seconds(janus_proc), sum(map(_cpu_seconds, harness))
            marks = [len(c) for c in counters]
            stamps_from = len(stamps_seen)
            started = time.monotonic()
            await asyncio.sleep(args.seconds)
            elapsed = time.monotonic() - started
            window_stamps = stamps_seen[stamps_from:]
            run.scopecast_cpu_pct = 100 * (_cpu_seconds(server) - cpu_before[0]) / elapsed
            run.bench_cpu_pct = 100 * (sum(map(_cpu_seconds, harness)) - cpu_before[2]) / elapsed
            if janus_proc is not None and path == "janus":
                run.janus_cpu_pct = 100 * (_cpu_seconds(janus_proc) - cpu_before[1]) / elapsed
            fps = [(len(c) - m) / elapsed for c, m in zip(counters, marks, strict=True)]
            if fps:
                run.fps_min, run.fps_median = min(fps), statistics.median(fps)
        finally:
            for reader in readers:
                reader.cancel()
            for close in closers:
                with suppress(Exception):
                    await close()
    latencies = latencies_ms(window_stamps, json.loads(send_log.read_text()) if send_log.exists() else [])
    if latencies:
        run.latency_ms_p50 = statistics.median(latencies)
    return run


@asynccontextmanager
async def _camera(addr: str, token: str, packets: Path, send_log: Path) -> AsyncIterator[tuple[str, int]]:
    """The camera process publishing to the server at `addr`: yields (stream id, pid); its send log is written to
    `send_log` when it is stopped."""
    env = {
        **os.environ,
        "BENCH_CAMERA_URL": f"ws://{addr}/ws",
        "BENCH_CAMERA_TOKEN": token,
        "BENCH_CAMERA_PACKETS": str(packets),
        "BENCH_CAMERA_LOG": str(send_log),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scopecast.bench.bench_camera", env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError(f"the bench camera exited with {await proc.wait()} before publishing")
        yield json.loads(line)["stream_id"], proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()


def latencies_ms(stamps_seen: list[tuple[int, float]], send_log: list[list[float]]) -> list[float]:
    """Glass-to-glass latency of each decoded frame: its arrival minus the last send of its stamp before it (the
    camera loops, so a stamp is sent again every loop)."""
    sends: dict[int, list[float]] = {}
    for stamp, sent in send_log:
        sends.setdefault(int(stamp), []).append(sent)
    latencies = []
    for stamp, arrived in stamps_seen:
        earlier = [sent for sent in sends.get(stamp, []) if sent <= arrived]
        if earlier:
            latencies.append(1000 * (arrived - max(earlier)))
    return latencies


async def _open_viewer(
    path: str, addr: str, token: str, stream_id: str, decode: bool, counters: list[list[float]]
) -> tuple[Any, Any]:
    """One viewer; a counting one adds its arrival list to `counters`. Returns (track, close)."""
    from stream.testing import client
    from stream.testing.janus_viewer import count_without_decoding, watch_room

    arrivals: list[float] = []
    if path == "direct":
        hook = None if decode else (lambda receiver: count_without_decoding(receiver, arrivals))
        session = await client.watch(f"ws://{addr}/ws", stream_id, token=token, on_receiver=hook)
        if not decode:
            counters.append(arrivals)
        return session.track, session.close
    async with httpx.AsyncClient(base_url=f"http://{addr}") as http:
        deadline = time.monotonic() + 30
        while True:
            reply = (
                await http.get(f"/api/streams/{stream_id}/janus", headers={"Authorization": f"Bearer {token}"})
            ).json()
            if reply.get("available") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
    if not reply.get("available"):
        raise RuntimeError(f"not on Janus: {reply.get('reason')}")
    viewer = await watch_room(reply["url"], reply["token"], reply["room"], reply["feed"], decode=decode)
    if not decode:
        counters.append(viewer.arrivals)
    return viewer.track, viewer.close


async def _read_stamps(track: Any, stamps_seen: list[tuple[int, float]], arrivals: list[float]) -> None:
    from stream.testing.framestamp import read_stamp

    while True:
        frame = await track.recv()
        now = time.monotonic()
        arrivals.append(now)
        index = read_stamp(frame.to_ndarray(format="gray"))
        if index is not None:
            stamps_seen.append((index, now))


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process `pid` (all its threads), from /proc: no psutil dependency."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def _print_table(results: list[ViewersRun]) -> None:
    print(
        "\npath    viewers  scopecast CPU %  Janus CPU %  bench CPU %  fps min  fps median  latency p50 ms  added ms"
        "  connected"
    )
    for r in results:
        janus_cpu = f"{r.janus_cpu_pct:11.1f}" if r.janus_cpu_pct is not None else f"{'-':>11}"
        latency = f"{r.latency_ms_p50:14.1f}" if r.latency_ms_p50 is not None else f"{'-':>14}"
        added = f"{r.latency_added_ms:+8.1f}" if r.latency_added_ms is not None else f"{'-':>8}"
        print(
            f"{r.path:7} {r.viewers:7d}  {r.scopecast_cpu_pct:15.1f}  {janus_cpu}  {r.bench_cpu_pct:11.1f}  {r.fps_min:7.1f}  "
            f"{r.fps_median:10.1f}  {latency}  {added}  {r.connected:9d}"
        )
        for error in r.errors[:3]:
            print(f"        ! {error}")
