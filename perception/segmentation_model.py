"""A segmentation network's mask turned into findings, whichever runtime runs the network.

``SegmentationModel`` implements ``perception.model.FrameModel``:

1. checks the frame, resizes it to the network input (square, aspect not kept,
   exactly as in training) and normalises it;
2. runs the network through a ``perception.runtimes`` ``Runtime``: by default
   onnxruntime (CPU, ``threads`` intra-op threads, default 1; the CUDA
   provider is used first when onnxruntime offers it and ``device`` allows);
3. sigmoid, resizes the probability map back towards the frame size and
   thresholds it. Components are found on an "analysis grid" with the frame's
   aspect ratio and at most ``analysis_max_side`` (512) pixels on its long side
   (the network's own output is 256 x 256, so a finer grid adds no information,
   only cost), then boxes, outlines and areas are scaled to frame pixels;
4. connected components -> one ``Finding`` per component of at least
   ``min_area_frac`` of the frame, largest first, at most ``max_objects``: box,
   score (mean probability inside the component), outline polygons
   (``cv2.findContours`` + ``approxPolyDP``, at most ``max_outline_points``
   points each, external boundary only) and area in frame pixels;
5. an ``IouTracker`` gives each finding a track id kept across consecutive frames.

One model instance serves ONE stream through ``predict``/``predict_batch``: the
tracker state lives in the instance, so frames of different streams must go to
different instances (or call ``reset()`` between unrelated frames).
``predict_streams`` is the exception: it keeps one tracker per stream key, so a
shared model worker batches many streams' frames through one instance. ``predict`` is blocking; call it from one
worker thread at a time.

Metadata (name, version, labels, input size, normalisation, threshold) comes
from ``perception.runtimes.base.model_metadata``: the sidecar ``<model>.json``
written by ``perception.export``, else the ``scopecast`` entry of the ONNX
metadata, else defaults; keyword arguments override both.

``inference_ms`` in the results is the whole ``predict`` time for that frame
(checks, resize, network, post-processing), not the network alone.

``runtime=`` (a kind for ``perception.runtimes.select_runtime`` such as
``"auto"``, ``"torch"``, ``"tensorrt"``, ``"triton"``, or a ``Runtime`` object)
runs the network there instead of onnxruntime; pre- and post-processing stay
here (see docs/runtimes.md). The content gate needs a runtime that returns the
graph's extra outputs (``ExtraOutputs``: onnxruntime); elsewhere the model says
the content check is unavailable on that runtime.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from perception.content_gate import GATE_OUTPUT
from perception.findings import ContentCheck, Finding, FrameFindings, ModelInfo
from perception.model import ModelError, StreamFrame, check_frame
from perception.runtimes.base import DescribesGraph, ExtraOutputs, GraphIO, RunsFrames, Runtime, inspect_onnx
from perception.runtimes.onnxrt import OnnxRuntime
from perception.tracking import IouTracker, MotionTracker

_T = TypeVar("_T")

DEFAULT_MEAN = (0.485, 0.456, 0.406)
DEFAULT_STD = (0.229, 0.224, 0.225)


def _triple(values: Any) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in values)
    return r, g, b


@dataclass(frozen=True)
class SegmentationMeta:
    """How to feed a segmentation ONNX and read its output."""

    name: str
    version: str = "0"
    labels: tuple[str, ...] = ("object",)
    mean: tuple[float, float, float] = DEFAULT_MEAN
    std: tuple[float, float, float] = DEFAULT_STD
    threshold: float = 0.5
    min_area_frac: float = 0.001
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any], default_name: str) -> SegmentationMeta:
        known = {"name", "version", "labels", "mean", "std", "threshold", "min_area_frac"}
        return cls(
            name=str(d.get("name", default_name)),
            version=str(d.get("version", "0")),
            labels=tuple(d.get("labels", ("object",))),
            mean=_triple(d.get("mean", DEFAULT_MEAN)),
            std=_triple(d.get("std", DEFAULT_STD)),
            threshold=float(d.get("threshold", 0.5)),
            min_area_frac=float(d.get("min_area_frac", 0.001)),
            extra={k: v for k, v in d.items() if k not in known},
        )


def normalisation(meta: SegmentationMeta) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(scale, offset) per channel such that ``x * scale + offset == (x / 255 - mean) / std``."""
    std = np.asarray(meta.std, np.float32)
    scale = (1.0 / (255.0 * std)).astype(np.float32)
    offset = (-np.asarray(meta.mean, np.float32) / std).astype(np.float32)
    return scale, offset


def preprocess_frame(
    frame: np.ndarray, input_size: tuple[int, int], scale: np.ndarray, offset: np.ndarray
) -> npt.NDArray[np.float32]:
    """An RGB uint8 frame as the network's 3 x H x W float32 input: resized to ``input_size`` (w, h), normalised.

    A function, not only a method, so that everything that feeds these graphs (the embedder too) sees the same
    pixels as the segmentation does.
    """
    w, h = input_size
    fh, fw = frame.shape[:2]
    small = frame
    if (fw, fh) != (w, h):
        k = int(min(fw / w, fh / h))
        if k >= 2:  # integer-factor area reduction first: same result as one INTER_AREA, much faster
            small = cv2.resize(small, (fw // k, fh // k), interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        if (sw, sh) != (w, h):
            # What is left is a factor under 2. Under 1.5 bilinear is as good as area averaging (training's crops were
            # resized bilinearly from its area-reduced cache) and a fractional INTER_AREA costs about 1 ms a frame here.
            interp = cv2.INTER_AREA if max(sw / w, sh / h) >= 1.5 else cv2.INTER_LINEAR
            small = cv2.resize(small, (w, h), interpolation=interp)
    # Normalised straight into the planar layout the network takes: one pass, no interleaved float copy.
    out: npt.NDArray[np.float32] = np.empty((3, h, w), np.float32)
    np.multiply(small.transpose(2, 0, 1), np.reshape(scale, (3, 1, 1)), out=out)
    out += np.reshape(offset, (3, 1, 1))
    return out


def _simplify(contour: np.ndarray, max_points: int) -> np.ndarray:
    """approxPolyDP with a tolerance grown until the polygon has at most max_points points."""
    eps = max(0.5, 0.003 * cv2.arcLength(contour, True))
    poly = cv2.approxPolyDP(contour, eps, True)
    while len(poly) > max_points:
        eps *= 1.5
        poly = cv2.approxPolyDP(contour, eps, True)
    return poly.reshape(-1, 2)


class Component(NamedTuple):
    """One 8-connected component of a mask: its box, its own pixels within the box, its outer boundary."""

    x: int
    y: int
    w: int
    h: int
    pixels: npt.NDArray[np.bool_]  # h x w, True on this component only
    contour: np.ndarray  # cv2 contour (K x 1 x 2), mask coordinates
    area: int  # pixel count


def mask_components(mask: npt.NDArray[np.uint8], min_area: float, max_objects: int) -> list[Component]:
    """The 8-connected components of a 0/1 mask with at least ``min_area`` pixels, largest first, at most
    ``max_objects``.

    Traced with ``findContours`` rather than labelled with ``connectedComponentsWithStats``: the same components
    (one outer boundary per 8-connected component) for about a seventh of the cost on a 512 x 512 grid (0.3 ms
    against 2.4 ms on polyp validation masks, this 2-core VM), because only the boundaries are visited; each
    component's pixels are then filled in within its own box.
    """
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    links = hierarchy[0]  # per contour: next, previous, first child (a hole), parent
    outers = [k for k in range(len(contours)) if links[k][3] < 0]
    boxes = {k: cv2.boundingRect(contours[k]) for k in outers}
    comps = []
    for k in outers:
        x, y, w, h = boxes[k]
        if w * h < min_area:  # it cannot hold enough pixels: no need to fill it
            continue
        filled = np.zeros((h, w), np.uint8)
        cv2.drawContours(filled, contours, k, 1, thickness=cv2.FILLED, offset=(-x, -y))
        if links[k][2] >= 0:  # it has holes: another component may sit in one, and is not part of this one
            for j in outers:
                bx, by, bw, bh = boxes[j]
                if j == k or bx < x or by < y or bx + bw > x + w or by + bh > y + h:
                    continue
                first = contours[j][0][0]
                if cv2.pointPolygonTest(contours[k], (float(first[0]), float(first[1])), False) > 0:
                    cv2.drawContours(filled, contours, j, 0, thickness=cv2.FILLED, offset=(-x, -y))
        inside = (filled & mask[y : y + h, x : x + w]).view(np.bool_)
        area = int(np.count_nonzero(inside))
        if area >= min_area:
            comps.append(Component(x, y, w, h, inside, contours[k], area))
    # Largest first; ties in raster order of each component's first pixel (where its trace starts), as labelling does.
    comps.sort(key=lambda c: (-c.area, int(c.contour[0, 0, 1]), int(c.contour[0, 0, 0])))
    return comps[:max_objects]


class SegmentationModel:
    """A binary segmentation network (N,3,H,W float -> N,1,h,w logits) run by a ``Runtime``, as a FrameModel."""

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int = 1,
        device: str = "auto",
        name: str | None = None,
        version: str | None = None,
        labels: Sequence[str] | None = None,
        threshold: float | None = None,
        min_area_frac: float | None = None,
        max_outline_points: int = 48,
        max_objects: int = 16,
        analysis_max_side: int = 512,
        tracker: IouTracker | MotionTracker | None = None,
        runtime: str | Runtime | None = None,
        runtime_options: dict[str, dict[str, Any]] | None = None,
        runtime_shared: bool = False,
        withhold_out_of_domain: bool = True,
        batch_workers: int = 1,
    ) -> None:
        """`runtime`: None for onnxruntime on `device` with `threads` threads; a kind for `select_runtime`; or a
        Runtime object. `runtime_shared`: that object also serves other models (perception.builtin gives every
        stream of a shipped model the same onnxruntime session), so `close()` leaves it open.

        `withhold_out_of_domain`: findings of a frame the content gate judges foreign are not given (the
        default); evaluation turns it off to score every image while still reporting the gate's verdict.

        `batch_workers`: threads that pre- and post-process the frames of a `predict_streams` batch side by side
        (1: one after another on the calling thread), so a batch keeps as many cores busy outside the network run as
        separate streams' threads would."""
        self.withhold_out_of_domain = withhold_out_of_domain
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        self._runtime: Runtime = self._make_runtime(runtime, threads, device, runtime_options)
        self._owns_runtime = not runtime_shared
        # The optional capabilities, resolved once: a Protocol isinstance costs 10-15 us, too much for every frame.
        self._on_device: RunsFrames | None = self._runtime if isinstance(self._runtime, RunsFrames) else None
        self._with_extras: ExtraOutputs | None = self._runtime if isinstance(self._runtime, ExtraOutputs) else None
        # A runtime that opened the graph itself (onnxruntime) already checked it; for the others it is read here.
        if isinstance(self._runtime, DescribesGraph):
            io, meta_dict = self._runtime.io, self._runtime.metadata
        else:
            io, meta_dict = inspect_onnx(self.path)
        meta = SegmentationMeta.from_dict(meta_dict, default_name=self.path.stem)
        overrides: dict[str, Any] = {}
        if name is not None:
            overrides["name"] = name
        if version is not None:
            overrides["version"] = version
        if labels is not None:
            overrides["labels"] = tuple(labels)
        if threshold is not None:
            overrides["threshold"] = float(threshold)
        if min_area_frac is not None:
            overrides["min_area_frac"] = float(min_area_frac)
        self.meta = replace(meta, **overrides)
        if not self.meta.labels:
            raise ModelError(f"{self.path.name}: model metadata has no labels")
        if not 0.0 < self.meta.threshold < 1.0:
            raise ModelError(f"{self.path.name}: threshold must be in (0, 1), got {self.meta.threshold}")
        self._use_graph(io)
        self._scale, self._offset = normalisation(self.meta)
        self.max_outline_points = max(3, int(max_outline_points))
        self.max_objects = max(1, int(max_objects))
        self.analysis_max_side = max(16, int(analysis_max_side))
        self.tracker = tracker if tracker is not None else MotionTracker()
        # predict_streams gives each stream a copy of the tracker as it was configured, before any frame.
        self._tracker_template = copy.deepcopy(self.tracker)
        self._stream_trackers: dict[str, IouTracker | MotionTracker] = {}
        self.batch_workers = max(1, int(batch_workers))
        self._pool: ThreadPoolExecutor | None = None
        self._info = ModelInfo(
            name=self.meta.name, version=self.meta.version, task="segmentation", labels=self.meta.labels
        )
        try:  # a first run proves the graph executes (and warms it up)
            self._run(np.zeros((1, 3, self.input_size[1], self.input_size[0]), np.float32))
        except ModelError:
            raise
        except Exception as e:
            raise ModelError(f"ONNX model {self.path} failed on a test input: {str(e).strip()[:300]}") from None

    # -- validation -------------------------------------------------------------------------------
    def _use_graph(self, io: GraphIO) -> None:
        self.input_size = io.input_size
        self.batch_dynamic = io.batch_dynamic
        self._setup_gate(list(io.output_names))

    def _setup_gate(self, output_names: list[str]) -> None:
        """The content gate: a `domain_distance` output and its threshold in the metadata, else a stated absence."""
        gate = self.meta.extra.get("content_gate")
        gate = gate if isinstance(gate, dict) else {}
        self.content_words = str(gate.get("content") or self.meta.extra.get("domain") or "its training images")
        self._gate_threshold: float | None = None
        self._gate_missing_reason = ""
        has_output = GATE_OUTPUT in output_names
        threshold = gate.get("threshold")
        if not has_output:
            self._gate_missing_reason = "content check unavailable: this model has no content gate"
        elif not isinstance(threshold, int | float) or not np.isfinite(threshold) or threshold <= 0:
            self._gate_missing_reason = "content check unavailable: the model's metadata has no valid gate threshold"
        elif self._with_extras is None:  # this runtime returns the logits only
            self._gate_missing_reason = f"content check unavailable on the {self._runtime.name} runtime"
        else:
            self._gate_threshold = float(threshold)

    @property
    def has_content_gate(self) -> bool:
        return self._gate_threshold is not None

    @property
    def content_check_threshold(self) -> float | None:
        return self._gate_threshold

    @property
    def content_unavailable_reason(self) -> str:
        """Why this model cannot judge its input ("" when it can)."""
        return self._gate_missing_reason

    def _content(self, distance: float | None) -> ContentCheck:
        if self._gate_threshold is None or distance is None:
            return ContentCheck(self.content_words, None, reason=self._gate_missing_reason)
        inside = bool(np.isfinite(distance) and distance <= self._gate_threshold)
        return ContentCheck(self.content_words, inside, distance=float(distance), threshold=self._gate_threshold)

    # -- FrameModel -------------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def providers(self) -> list[str]:
        """onnxruntime's execution providers, or the runtime's name for the other runtimes."""
        if isinstance(self._runtime, OnnxRuntime):
            return self._runtime.providers
        return [self._runtime.name]

    @property
    def runtime_name(self) -> str:
        """Which runtime runs the network (``onnxruntime-cpu``, ``tensorrt-fp16``, ``triton``...)."""
        return str(self._runtime.name)

    def close(self) -> None:
        """Release the runtime (GPU engine, remote connection) unless it is shared; the model is unusable afterwards."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if self._owns_runtime:
            self._runtime.close()

    def reset(self) -> None:
        """Forget tracks: call between unrelated frames or when a stream restarts."""
        self.tracker.reset()
        self._stream_trackers.clear()

    def predict(self, frame_rgb: np.ndarray) -> FrameFindings:
        return self.predict_batch([frame_rgb])[0]

    def predict_batch(self, frames: Sequence[np.ndarray]) -> list[FrameFindings]:
        """Findings for consecutive frames of one stream, run as one batch; tracks advance in order.

        ``inference_ms`` of each result is its own pre/post-processing time plus
        its share of the batched network run.
        """
        return [f for f, _ in self._predict(frames, want_masks=False)]

    def predict_streams(self, frames: Sequence[StreamFrame]) -> list[FrameFindings]:
        """Findings for frames of different streams from one network run (``perception.model.StreamBatchModel``);
        each stream key has its own tracker, so streams never trade track ids."""
        trackers = []
        for item in frames:
            tracker = self._stream_trackers.get(item.stream)
            if tracker is None:
                tracker = self._stream_trackers[item.stream] = copy.deepcopy(self._tracker_template)
            trackers.append(tracker)
        found = self._predict([f.frame_rgb for f in frames], want_masks=False, trackers=trackers)
        return [f for f, _ in found]

    def forget_stream(self, stream: str) -> None:
        self._stream_trackers.pop(stream, None)

    def predict_with_mask(self, frame_rgb: np.ndarray) -> tuple[FrameFindings, np.ndarray]:
        """Findings plus the thresholded mask (bool, frame size, specks dropped as in the findings), one network run."""
        found, mask = self._predict([frame_rgb], want_masks=True)[0]
        assert mask is not None  # want_masks=True gives every frame its mask
        return found, mask

    def probabilities(self, frame_rgb: np.ndarray) -> np.ndarray:
        """Foreground probability per pixel of the frame (float32, H x W); tracker untouched."""
        small = self._net_probabilities(frame_rgb)  # checks the frame first
        h, w = frame_rgb.shape[:2]
        prob: np.ndarray = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        return prob

    def segment(self, frame_rgb: np.ndarray) -> np.ndarray:
        """The mask ``predict_with_mask`` gives (bool, frame size, specks dropped); tracker untouched."""
        small = self._net_probabilities(frame_rgb)
        h, w = frame_rgb.shape[:2]
        return self._full_mask(small, w, h)

    # -- internals --------------------------------------------------------------------------------
    def _net_probabilities(self, frame_rgb: np.ndarray) -> np.ndarray:
        check_frame(frame_rgb)
        return self._sigmoid(self._run(self._preprocess(frame_rgb)[None])[0][0])

    def _preprocess(self, frame: np.ndarray) -> np.ndarray:
        return preprocess_frame(frame, self.input_size, self._scale, self._offset)

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(logits N x h x w, gate distances N or None) for a normalised batch."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._gate_threshold is None or self._with_extras is None:
            return self._runtime.run(batch), None
        logits, (gate,) = self._with_extras.run_with(batch, (GATE_OUTPUT,))
        distances = np.asarray(gate, np.float64).reshape(-1)
        if distances.shape[0] != len(batch):
            raise ModelError(
                f"{self.path.name}: {GATE_OUTPUT} has {distances.shape[0]} values for a batch of {len(batch)}"
            )
        return logits, distances

    @staticmethod
    def _sigmoid(logits: np.ndarray) -> npt.NDArray[np.float32]:
        prob: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))).astype(np.float32)
        return prob

    def _predict(
        self,
        frames: Sequence[np.ndarray],
        *,
        want_masks: bool,
        trackers: Sequence[IouTracker | MotionTracker] | None = None,
    ) -> list[tuple[FrameFindings, np.ndarray | None]]:
        """`trackers`: one per frame (frames of different streams); None: this instance's own for all."""
        if len(frames) == 0:
            return []
        # Frames of different streams have their own trackers, so their pre- and post-processing may overlap.
        parallel = trackers is not None and len(frames) > 1 and self.batch_workers > 1

        def prepare(f: np.ndarray) -> tuple[np.ndarray | None, float]:
            t0 = time.perf_counter()
            check_frame(f)
            tensor = self._preprocess(f) if self._on_device is None else None
            return tensor, time.perf_counter() - t0

        prepared = self._map(prepare, frames, parallel)
        t_pre = [t for _, t in prepared]
        t0 = time.perf_counter()
        distances: np.ndarray | None = None
        if self._on_device is not None:  # the runtime resizes and normalises on its own device (GPU)
            logits = self._on_device.run_frames(frames, self.meta.mean, self.meta.std)
        else:
            logits, distances = self._run(np.stack([t for t, _ in prepared if t is not None]))
        t_run = (time.perf_counter() - t0) / len(frames)

        def finish(k: int) -> tuple[FrameFindings, np.ndarray | None]:
            t0 = time.perf_counter()
            f = frames[k]
            content = self._content(None if distances is None else float(distances[k]))
            withhold = content.in_domain is False and self.withhold_out_of_domain
            tracker = self.tracker if trackers is None else trackers[k]
            objects, mask = self._postprocess(
                self._sigmoid(logits[k]), f.shape[1], f.shape[0], tracker, want_masks, withhold
            )
            ms = (t_pre[k] + t_run + time.perf_counter() - t0) * 1000.0
            ff = FrameFindings(
                model=self._info, frame_size=(f.shape[1], f.shape[0]), objects=objects, inference_ms=ms, content=content
            )
            return ff, mask

        return self._map(finish, range(len(frames)), parallel)

    def _map(self, fn: Callable[[Any], _T], items: Iterable[Any], parallel: bool) -> list[_T]:
        """`fn` over `items` in order; on the model's own small pool when `parallel` (cv2 and numpy release the GIL)."""
        if not parallel:
            return [fn(x) for x in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.batch_workers, thread_name_prefix=f"{self.meta.name}-prep")
        return list(self._pool.map(fn, items))

    def _make_runtime(
        self, runtime: str | Runtime | None, threads: int, device: str, options: dict[str, dict[str, Any]] | None
    ) -> Runtime:
        if runtime is None:
            return OnnxRuntime(self.path, threads=threads, device=device)
        if not isinstance(runtime, str):
            if not isinstance(runtime, Runtime):
                raise ModelError(f"runtime must be a kind name or a Runtime object, got {type(runtime).__name__}")
            return runtime
        from perception.runtimes.select import select_runtime

        opts = {k: dict(v) for k, v in (options or {}).items()}
        if runtime == "onnxruntime":
            opts.setdefault("onnxruntime", {}).setdefault("device", device)
        return select_runtime(runtime, self.path, threads=threads, options=opts)

    def _grid_size(self, width: int, height: int) -> tuple[int, int]:
        """Resolution at which components and outlines are found (then scaled to the frame)."""
        scale = min(1.0, self.analysis_max_side / max(width, height))
        return max(1, round(width * scale)), max(1, round(height * scale))

    def _postprocess(
        self,
        prob_small: np.ndarray,
        width: int,
        height: int,
        tracker: IouTracker | MotionTracker,
        want_mask: bool = False,
        withhold: bool = False,
    ) -> tuple[tuple[Finding, ...], np.ndarray | None]:
        if withhold:
            # Nothing is said about a frame the model does not know; tracks age as if nothing were seen.
            tracker.update([], [], [])
            return (), (self._full_mask(prob_small, width, height) if want_mask else None)
        gw, gh = self._grid_size(width, height)
        if prob_small.shape != (gh, gw):
            prob = cv2.resize(prob_small, (gw, gh), interpolation=cv2.INTER_LINEAR)
        else:
            prob = np.ascontiguousarray(prob_small)
        grid_mask = (prob >= self.meta.threshold).view(np.uint8)
        min_area = max(1.0, self.meta.min_area_frac * gw * gh)
        sx, sy = width / gw, height / gh
        label = self.meta.labels[0]
        found = []
        for comp in mask_components(grid_mask, min_area, self.max_objects):
            x, y, w, h = comp.x, comp.y, comp.w, comp.h
            score = float(prob[y : y + h, x : x + w][comp.pixels].mean())
            outline = []
            if len(comp.contour) >= 3:
                pts = _simplify(comp.contour, self.max_outline_points).astype(np.float64)
                px = np.clip(np.round((pts[:, 0] + 0.5) * sx - 0.5), 0, width - 1).astype(int)
                py = np.clip(np.round((pts[:, 1] + 0.5) * sy - 0.5), 0, height - 1).astype(int)
                outline.append(tuple(zip(px.tolist(), py.tolist())))
            box = (
                int(np.floor(x * sx)),
                int(np.floor(y * sy)),
                min(width, int(np.ceil((x + w) * sx))),
                min(height, int(np.ceil((y + h) * sy))),
            )
            found.append((label, score, box, tuple(outline), int(round(comp.area * sx * sy))))
        ids = tracker.update([b for _, _, b, _, _ in found], [lab for lab, *_ in found], [s for _, s, *_ in found])
        objects = tuple(
            Finding(label=lab, score=score, box=box, outline=outline, track_id=tid, area_px=area)
            for (lab, score, box, outline, area), tid in zip(found, ids)
        )
        return objects, (self._full_mask(prob_small, width, height) if want_mask else None)

    def _full_mask(self, prob_small: np.ndarray, width: int, height: int) -> np.ndarray:
        """The frame-sized mask, with components kept by the findings' rule (at least the minimum area, at most
        ``max_objects``), so that a measured area or a scored Dice does not count specks the findings and the
        overlay drop. Found at frame size, not on the analysis grid: where the grid is smaller, a component near
        the minimum area can fall on the other side of it. A withheld frame still gets its mask (for scoring)."""
        full = (cv2.resize(prob_small, (width, height), interpolation=cv2.INTER_LINEAR) >= self.meta.threshold).view(
            np.uint8
        )
        mask = np.zeros((height, width), np.bool_)
        for comp in mask_components(full, max(1.0, self.meta.min_area_frac * width * height), self.max_objects):
            mask[comp.y : comp.y + comp.h, comp.x : comp.x + comp.w] |= comp.pixels
        return mask
