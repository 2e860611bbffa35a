"""`scopecast bench overlay`: does what is drawn sit on the frame it is drawn on?

An image sequence (file-name order, masks paired by base name) plays as a WebRTC camera through the real server
(in-process, loopback). Every frame's index is stamped into its pixels, so for every frame that comes back the bench
knows which input frame it shows; the overlay's translucent fill is read back from the pixels (the returned frame
against the clean input), so it also knows what is drawn on it. It reports:

- `own_frame_iou`: each findings event's outlines against the mask of the frame the model saw;
- `displayed_iou`: what is drawn on each returned frame against the mask of the frame it shows;
- `added_latency_ms_p50` / `_p99`: glass-to-glass latency over the same sequence with the model and overlay on,
  minus a plain relay (no model, no overlay);
- `fps_out`; and a PNG with the per-frame IoU and latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import cv2
import numpy as np

if TYPE_CHECKING:
    from av import VideoFrame

    from perception.registry import ModelRegistry

RESOLUTIONS = {"native": None, "480p": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_FILL_ALPHA_RANGE = (0.15, 0.7)  # the overlay's fill is 35 % colour; outlines, boxes and labels are opaque


class SequenceError(ValueError):
    """The images or masks cannot be used; the message says which and why."""


@dataclass
class Sequence:
    """Frames (BGR) and masks (bool), resized to one size, in playing order."""

    names: list[str]
    frames: list[np.ndarray]
    masks: list[np.ndarray]

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.frames[0].shape[:2]
        return width, height


@dataclass
class Measured:
    """One run: every returned frame (input index, latency, displayed IoU), every findings event (input index, own
    IoU), the measured seconds, and how many frames were drawn with own / carried / lost / no findings."""

    returned: list[dict]
    own: list[dict]
    seconds: float
    registrations: dict[str, float]


@dataclass
class OverlayBenchResult:
    images: int
    fps_in: float
    resolution: str
    model: str
    seconds: float
    own_frame_iou: float
    displayed_iou: float
    displayed_over_own: float
    added_latency_ms_p50: float
    added_latency_ms_p99: float
    latency_ms_p50: float
    latency_ms_p99: float
    relay_latency_ms_p50: float
    relay_latency_ms_p99: float
    fps_out: float
    frames_returned: int
    registrations: dict[str, float] = field(default_factory=dict)
    per_frame: list[dict] = field(default_factory=list)


def load_sequence(images: Path, masks: Path, size: tuple[int, int] | None) -> Sequence:
    """Images in file-name order and their masks by base name; SequenceError names what does not pair or read."""
    if not images.is_dir():
        raise SequenceError(f"--images {images}: not a folder")
    if not masks.is_dir():
        raise SequenceError(f"--masks {masks}: not a folder")
    image_files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not image_files:
        raise SequenceError(f"--images {images}: no images ({', '.join(IMAGE_SUFFIXES)})")
    mask_by_stem = {p.stem: p for p in masks.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    unpaired = [p.name for p in image_files if p.stem not in mask_by_stem]
    if unpaired:
        raise SequenceError(
            f"{len(unpaired)} image(s) have no mask of the same base name in {masks}: {', '.join(unpaired[:5])}"
        )
    names, frames, truth = [], [], []
    for path in image_files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(mask_by_stem[path.stem]), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise SequenceError(f"cannot read image {path}")
        if mask is None:
            raise SequenceError(f"cannot read mask {mask_by_stem[path.stem]}")
        if mask.shape != image.shape[:2]:
            raise SequenceError(
                f"mask {mask_by_stem[path.stem].name} is {mask.shape[1]}x{mask.shape[0]}, "
                f"its image {image.shape[1]}x{image.shape[0]}"
            )
        target = size or (image.shape[1] // 2 * 2, image.shape[0] // 2 * 2)  # even sizes for the video encoder
        names.append(path.name)
        frames.append(cv2.resize(image, target, interpolation=cv2.INTER_AREA))
        truth.append(cv2.resize(mask, target, interpolation=cv2.INTER_NEAREST) > 127)
    return Sequence(names, frames, truth)


def drawn_region(returned: np.ndarray, clean: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Where the overlay's translucent fill is, read from pixels: the returned frame is clean*(1-a) + colour*a there.

    Opaque outline, box and label pixels are left out, then the fill is closed over the outline's width.
    """
    out = returned.astype(np.float32)
    base = clean.astype(np.float32)
    towards = np.asarray(colour, np.float32) - base
    reach = (towards**2).sum(axis=2)
    alpha = ((out - base) * towards).sum(axis=2) / np.maximum(reach, 1.0)
    low, high = _FILL_ALPHA_RANGE
    # The pixel must be explained by the blend itself (not, say, the black latency box the projection also scores).
    misfit = np.sqrt(((out - base - alpha[..., None] * towards) ** 2).sum(axis=2))
    explained = (reach > 60.0**2) & (misfit < 30.0)
    fill = ((alpha > low) & (alpha < high) & explained).astype(np.uint8)
    fill = cv2.morphologyEx(fill, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    fill = cv2.morphologyEx(fill, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    # The outline is drawn opaque on the region's edge: take back the opaque pixels that border the fill (the box
    # and label, drawn apart from it, stay out).
    opaque = ((alpha >= high) & explained).astype(np.uint8)
    edge = cv2.dilate(fill, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    return (fill | (opaque & edge)).astype(bool)


def iou(a: np.ndarray, b: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Intersection over union; 1.0 when both are empty (nothing there, nothing drawn)."""
    if ignore is not None:
        a, b = a & ~ignore, b & ~ignore
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def outline_mask(objects: list[dict], event_size: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """The outlines of a findings event, filled, at `size` (w, h)."""
    mask = np.zeros((event_size[1], event_size[0]), np.uint8)
    for obj in objects:
        polygons = [np.asarray(p, np.int32) for p in obj.get("outline", []) if len(p) >= 3]
        if polygons:
            cv2.fillPoly(mask, polygons, 1)
    return cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST).astype(bool)


def stamp_area(size: tuple[int, int]) -> np.ndarray:
    """The pixels the frame-index stamp overwrites (a row of blocks at the bottom left): left out of every IoU."""
    area = np.zeros((size[1], size[0]), bool)
    area[size[1] - 32 :, : 24 * 16 + 16] = True
    return area


async def measure(
    sequence: Sequence,
    fps: float,
    model: str,
    *,
    registry: ModelRegistry | None = None,  # None: the shipped models
    label_colour: tuple[int, int, int] | None = None,
    loops: int = 1,
    warmup_s: float = 1.0,
    settings_overrides: dict | None = None,
) -> Measured:
    """Play `sequence` `loops` times through a real in-process server and measure what comes back."""
    from overlay.palette import colour_for_label
    from scopecast.app import create_app
    from scopecast.bench.stream import bench_access, serve_locally
    from scopecast.settings import Settings
    from stream.registration import luma
    from stream.testing import client
    from stream.testing.framestamp import StampedVideoTrack, read_stamp

    access, token = bench_access()
    settings = Settings(serve_sample=False, model=model, log_level="WARNING", **(settings_overrides or {}))
    app = create_app(settings, registry, stream_access=access)
    count = len(sequence.frames)
    width, height = sequence.size
    total = count * loops
    events: list[tuple[int, list[dict], tuple[int, int]]] = []
    frames_back: list[tuple[int, float, np.ndarray | None]] = []
    # While the video runs the bench only reads stamps and keeps a small copy of each frame: the analysis below would
    # otherwise take the CPU from the server it measures.
    analysis = _analysis_size(sequence.size)
    async with serve_locally(app) as addr:
        camera = StampedVideoTrack(width, height, fps, lambda i: sequence.frames[i % count])
        session = await client.publish(f"ws://{addr}/ws", camera, token=token)
        entry = app.state.hub.get(session.stream_id)

        def on_event(message: str) -> None:
            event = json.loads(message)
            if event.get("type") != "findings":
                return
            result = entry.pipeline.recent_result(event["frame_seq"])
            index = read_stamp(luma(result.source.frame)) if result is not None else None
            if index is not None and index < total:
                events.append((index, event["objects"], tuple(event["frame_size"])))

        unsubscribe = entry.pipeline.add_listener(on_event)
        colour = label_colour
        keep_pixels = model != "none"
        started = time.monotonic()
        try:
            while True:
                frame = cast("VideoFrame", await asyncio.wait_for(session.track.recv(), 10))
                now = time.monotonic()
                index = read_stamp(luma(frame))
                if index is None:
                    continue
                if index >= total:
                    break
                if now - started < warmup_s:
                    continue
                latest = entry.pipeline.latest_result
                if colour is None and latest is not None and latest.findings.model.labels:
                    colour = colour_for_label(latest.findings.model.labels[0])
                small = (
                    frame.reformat(width=analysis[0], height=analysis[1], format="bgr24").to_ndarray()
                    if keep_pixels
                    else None
                )
                frames_back.append((index, (now - camera.sent_at[index]) * 1000, small))
            registrations = {
                sample.labels["registration"]: sample.value
                for metric in app.state.metrics.registry.collect()
                if metric.name == "scopecast_overlay_frames"
                for sample in metric.samples
                if sample.name.endswith("_total") and sample.labels.get("stream") == session.stream_id
            }
        finally:
            unsubscribe()
            await session.close()
        seconds = time.monotonic() - started - warmup_s
    returned, own = _analyse(sequence, analysis, frames_back, events, colour)
    return Measured(returned, own, seconds, registrations)


def _analysis_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, 640 / width)
    return int(width * scale) // 2 * 2, int(height * scale) // 2 * 2


def _analyse(
    sequence: Sequence,
    size: tuple[int, int],
    frames_back: list[tuple[int, float, np.ndarray | None]],
    events: list[tuple[int, list[dict], tuple[int, int]]],
    colour: tuple[int, int, int] | None,
) -> tuple[list[dict], list[dict]]:
    """IoUs at the analysis size: what is drawn on each returned frame, and each event's own outlines."""
    from stream.testing.framestamp import stamp_frame

    count = len(sequence.frames)
    clean, masks = [], []
    for image, mask in zip(sequence.frames, sequence.masks):
        stamped = image.copy()
        stamp_frame(stamped, 0)  # the stamp's pixels are left out below
        clean.append(cv2.resize(stamped, size, interpolation=cv2.INTER_AREA))
        masks.append(cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool))
    ignore = cv2.resize(stamp_area(sequence.size).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    returned = []
    for index, latency_ms, small in frames_back:
        if small is None or colour is None:
            returned.append({"index": index, "latency_ms": latency_ms, "iou": None})
            continue
        shown = drawn_region(small, clean[index % count], colour)
        returned.append({"index": index, "latency_ms": latency_ms, "iou": iou(shown, masks[index % count], ignore)})
    own = [
        {
            "index": index,
            "iou": iou(outline_mask(objects, frame_size, size), masks[index % count], ignore),
            "objects": len(objects),
        }
        for index, objects, frame_size in events
    ]
    return returned, own


def summarise(
    sequence: Sequence, fps: float, resolution: str, model: str, full: Measured, relay: Measured
) -> OverlayBenchResult:
    returned, own, seconds = full.returned, full.own, full.seconds
    relay_returned = relay.returned
    own_by_index = {o["index"]: o["iou"] for o in own}
    # Compare like with like: frames whose own findings exist, shown or not.
    displayed = [r["iou"] for r in returned if r["index"] in own_by_index and r["iou"] is not None]
    own_values = [own_by_index[r["index"]] for r in returned if r["index"] in own_by_index and r["iou"] is not None]
    latency = [r["latency_ms"] for r in returned]
    relay_latency = [r["latency_ms"] for r in relay_returned]
    own_mean = statistics.fmean(own_values) if own_values else 0.0
    shown_mean = statistics.fmean(displayed) if displayed else 0.0
    p50, p99 = _percentile(latency, 50), _percentile(latency, 99)
    r50, r99 = _percentile(relay_latency, 50), _percentile(relay_latency, 99)
    return OverlayBenchResult(
        images=len(sequence.frames),
        fps_in=fps,
        resolution=resolution,
        model=model,
        seconds=round(seconds, 2),
        own_frame_iou=round(own_mean, 4),
        displayed_iou=round(shown_mean, 4),
        displayed_over_own=round(shown_mean / own_mean, 4) if own_mean else 0.0,
        added_latency_ms_p50=round(p50 - r50, 1),
        added_latency_ms_p99=round(p99 - r99, 1),
        latency_ms_p50=round(p50, 1),
        latency_ms_p99=round(p99, 1),
        relay_latency_ms_p50=round(r50, 1),
        relay_latency_ms_p99=round(r99, 1),
        fps_out=round(len(returned) / seconds, 2) if seconds > 0 else 0.0,
        frames_returned=len(returned),
        registrations=full.registrations,
        per_frame=[{**r, "own_iou": own_by_index.get(r["index"])} for r in returned],
    )


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, required=True, help="folder of frames, played in file-name order")
    parser.add_argument("--masks", type=Path, required=True, help="folder of masks with the images' base names")
    parser.add_argument("--fps", type=float, default=25.0, help="camera frame rate (1-60)")
    parser.add_argument("--resolution", choices=sorted(RESOLUTIONS), default="720p")
    parser.add_argument("--model", default="polyp", help="registered model (default polyp)")
    parser.add_argument("--loops", type=int, default=1, help="play the sequence this many times (1-20)")
    parser.add_argument("--register-wait-ms", type=float, default=None, help="override SCOPECAST_REGISTER_WAIT_MS")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument(
        "--plot", type=Path, default=None, help="PNG of per-frame IoU and latency (default: beside --json)"
    )


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.fps <= 60:
        print(f"scopecast bench overlay: --fps {args.fps:g} is out of range (1-60)", file=sys.stderr)
        return 2
    if not 1 <= args.loops <= 20:
        print(f"scopecast bench overlay: --loops {args.loops} is out of range (1-20)", file=sys.stderr)
        return 2
    try:
        sequence = load_sequence(args.images, args.masks, RESOLUTIONS[args.resolution])
    except SequenceError as exc:
        print(f"scopecast bench overlay: {exc}", file=sys.stderr)
        return 2
    overrides = {} if args.register_wait_ms is None else {"register_wait_ms": args.register_wait_ms}
    print(
        f"playing {len(sequence.frames)} frames at {args.fps:g} fps, {sequence.size[0]}x{sequence.size[1]}, "
        f"model {args.model}: relay first, then model + overlay ...",
        flush=True,
    )
    relay = asyncio.run(measure(sequence, args.fps, "none", loops=args.loops))
    full = asyncio.run(measure(sequence, args.fps, args.model, loops=args.loops, settings_overrides=overrides))
    result = summarise(sequence, args.fps, args.resolution, args.model, full, relay)
    summary = {k: v for k, v in asdict(result).items() if k != "per_frame"}
    for key, value in summary.items():
        print(f"  {key:24s} {value}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        from scopecast.bench.stream import machine_description

        args.json.write_text(json.dumps({"machine": machine_description(), **asdict(result)}, indent=2))
        print(f"wrote {args.json}")
    plot = args.plot or (args.json.with_suffix(".png") if args.json is not None else None)
    if plot is not None:
        _plot(result, plot)
        print(f"wrote {plot}")
    return 0


def _plot(result: OverlayBenchResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [r["index"] for r in result.per_frame]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(frames, [r["iou"] for r in result.per_frame], ".", ms=3, label="displayed (drawn vs frame shown)")
    top.plot(
        frames,
        [r["own_iou"] if r["own_iou"] is not None else np.nan for r in result.per_frame],
        ".",
        ms=3,
        label="own frame (findings vs their frame)",
    )
    top.set_ylabel("IoU")
    top.set_ylim(0, 1.02)
    top.legend(loc="lower left")
    top.set_title(
        f"{result.model}, {result.images} frames at {result.fps_in:g} fps, {result.resolution}: "
        f"displayed {result.displayed_iou:.3f} / own {result.own_frame_iou:.3f}"
    )
    bottom.plot(frames, [r["latency_ms"] for r in result.per_frame], ".", ms=3)
    bottom.set_ylabel("glass-to-glass ms")
    bottom.set_xlabel("input frame")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
