"""`scopecast eval tracking`: can a surgeon follow an object by its id?

Plays frames in order through a shipped model (its tracker included) and counts:

- with masks (CVC-ClinicDB sequences): the ground-truth polyp of each frame (its largest mask component) is matched
  to the finding that overlaps it most (box IoU >= 0.3); **id switches** are frames where that finding's id differs
  from the last one matched to the same polyp, and **new ids per object per 10 s** the ids it was given after its
  first, per 10 s of video at `--fps`;
- without masks (a video file): **new ids per 10 s per object on screen** (tracks started beyond the objects on
  screen, per 10 s, per object).

`--stride N` runs the model on every N-th frame only, as a busy stream does.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from perception.datasets import CVC_SEQUENCE_STARTS
from perception.findings import FrameFindings
from perception.metrics import box_iou
from perception.model import ModelError

if TYPE_CHECKING:  # loaded by main(), so that --help does not load onnxruntime
    from perception.segmentation_model import SegmentationModel


@dataclass
class SequenceTracking:
    name: str
    frames: int
    seconds: float
    objects_followed: float  # ground-truth objects (1 a sequence) or mean objects on screen
    ids_given: int
    id_switches: int
    new_ids_per_object_per_10s: float


def largest_component_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    if count <= 1:
        return None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, _area = (int(v) for v in stats[i])
    return x, y, x + w, y + h


def follow_ground_truth(
    name: str, findings_per_frame: Sequence[FrameFindings | None], masks: Sequence[np.ndarray], fps: float
) -> SequenceTracking:
    """Id switches and ids per 10 s of the ground-truth polyp across one sequence's frames."""
    last_id: int | None = None
    ids: set[int] = set()
    switches = 0
    for findings, mask in zip(findings_per_frame, masks):
        truth = largest_component_box(mask)
        if truth is None or findings is None:
            continue
        best = max(findings.objects, key=lambda f: box_iou(f.box, truth), default=None)
        if best is None or box_iou(best.box, truth) < 0.3 or best.track_id is None:
            continue
        if last_id is not None and best.track_id != last_id:
            switches += 1
        last_id = best.track_id
        ids.add(best.track_id)
    seconds = len(masks) / fps
    # The first id an object gets is expected; every further one is churn the surgeon sees.
    return SequenceTracking(
        name,
        len(masks),
        round(seconds, 2),
        1,
        len(ids),
        switches,
        round(max(0, len(ids) - 1) / max(seconds / 10, 1e-9), 2),
    )


def count_new_ids(name: str, findings_per_frame: Sequence[FrameFindings | None], fps: float) -> SequenceTracking:
    """Without ground truth: ids created per 10 s, per object on screen."""
    seen: set[int] = set()
    on_screen: list[int] = []
    for findings in findings_per_frame:
        if findings is None:
            continue
        on_screen.append(len(findings.objects))
        seen.update(f.track_id for f in findings.objects if f.track_id is not None)
    seconds = len(findings_per_frame) / fps
    mean_objects = max(float(np.mean(on_screen)) if on_screen else 0.0, 1e-9)
    per = max(0.0, len(seen) - mean_objects) / max(seconds / 10, 1e-9) / mean_objects if seen else 0.0
    return SequenceTracking(
        name, len(findings_per_frame), round(seconds, 2), round(mean_objects, 2), len(seen), 0, round(per, 2)
    )


def run_model(model: SegmentationModel, frames: Iterator[np.ndarray], stride: int) -> list[FrameFindings | None]:
    """Findings for every `stride`-th frame (None for the frames skipped), in order, tracker reset first.

    Each finding's track_id is replaced by its track's unique serial where the tracker reuses display numbers, so
    a new track is counted as new even when it is shown as 'polyp 1' again."""
    model.reset()
    out: list[FrameFindings | None] = []
    for i, frame_bgr in enumerate(frames):
        if i % stride:
            out.append(None)
            continue
        findings = model.predict(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        serials = getattr(model.tracker, "last_serials", None)
        if serials is not None:
            objects = tuple(dataclasses.replace(f, track_id=s) for f, s in zip(findings.objects, serials))
            findings = dataclasses.replace(findings, objects=objects)
        out.append(findings)
    return out


def _cvc_sequences(images: Path, masks: Path) -> Iterator[tuple[str, list[Path], list[Path]]]:
    names = sorted(p.stem for p in images.glob("*.jpg"))
    bounds = [*CVC_SEQUENCE_STARTS, 10**9]
    for k, start in enumerate(bounds[:-1]):
        stems = [n for n in names if n.isdigit() and start <= int(n) < bounds[k + 1]]
        if stems:
            yield f"cvc-seq{k + 1:02d}", [images / f"{s}.jpg" for s in stems], [masks / f"{s}.png" for s in stems]


def _read(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return image


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="bgr24")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scopecast eval tracking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="polyp", help="shipped model name or .onnx path")
    parser.add_argument(
        "--cvc", type=Path, help="CVC-ClinicDB folder with images/ and masks/ (sequences by frame number)"
    )
    parser.add_argument(
        "--video", type=Path, action="append", default=[], help="a video file without masks; repeatable"
    )
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate the CVC frames stand for (video: its own)")
    parser.add_argument("--stride", type=int, default=1, help="run the model on every N-th frame (1-10)")
    parser.add_argument(
        "--tracker",
        choices=["motion", "iou"],
        default="motion",
        help="motion: the shipped ByteTrack-style tracker; iou: the earlier greedy IoU one, for comparison",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not 1 <= args.stride <= 10:
        parser.error(f"--stride {args.stride} is out of range (1-10)")
    if args.cvc is None and not args.video:
        parser.error("give --cvc and/or --video")
    from perception.builtin import register_builtin_models
    from perception.registry import ModelRegistry
    from perception.segmentation_model import SegmentationModel

    path = Path(args.model)
    try:
        if path.suffix == ".onnx" or path.exists():  # an exported model not (yet) shipped
            model = SegmentationModel(path)
        else:
            registry = ModelRegistry()
            register_builtin_models(registry)
            created = registry.create(args.model)
            assert isinstance(created, SegmentationModel)  # what every shipped model is
            model = created
    except ModelError as e:
        parser.error(str(e))
    if args.tracker == "iou":
        from perception.tracking import IouTracker

        model.tracker = IouTracker()
    results: list[SequenceTracking] = []
    if args.cvc is not None:
        images, masks = args.cvc / "images", args.cvc / "masks"
        if not images.is_dir() or not masks.is_dir():
            print(f"scopecast eval tracking: {args.cvc} needs images/ and masks/", file=sys.stderr)
            return 2
        for name, image_paths, mask_paths in _cvc_sequences(images, masks):
            found = run_model(model, (_read(p) for p in image_paths), args.stride)
            truth = [_read(p, cv2.IMREAD_GRAYSCALE) > 127 for p in mask_paths]
            results.append(follow_ground_truth(name, found, truth, args.fps))
    for video in args.video:
        import av

        with av.open(str(video)) as container:
            rate = float(container.streams.video[0].average_rate or 25)
        results.append(count_new_ids(video.name, run_model(model, _video_frames(video), args.stride), rate))
    for r in results:
        print(
            f"{r.name:28s} {r.frames:4d} frames {r.seconds:6.1f} s  ids {r.ids_given:3d}  switches {r.id_switches:3d}  "
            f"new ids/object/10 s {r.new_ids_per_object_per_10s:6.2f}"
        )
    cvc = [r for r in results if r.name.startswith("cvc-")]
    if cvc:
        print(
            f"CVC sequences: mean new ids per object per 10 s {np.mean([r.new_ids_per_object_per_10s for r in cvc]):.2f}, "
            f"id switches {sum(r.id_switches for r in cvc)} over {sum(r.frames for r in cvc)} frames"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "model": args.model,
                    "tracker": args.tracker,
                    "stride": args.stride,
                    "fps": args.fps,
                    "sequences": [asdict(r) for r in results],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
