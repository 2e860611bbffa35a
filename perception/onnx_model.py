"""Run an exported segmentation network with onnxruntime and turn its mask into findings.

``OnnxSegmentationModel`` implements ``perception.model.FrameModel``:

1. checks the frame, resizes it to the network input (square, aspect not kept,
   exactly as in training) and normalises it;
2. runs the ONNX graph (CPU, ``threads`` intra-op threads, default 1; the CUDA
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

One model instance serves ONE stream: the tracker state lives in the instance,
so frames of different streams must go to different instances (or call
``reset()`` between unrelated frames). ``predict`` is blocking; call it from one
worker thread at a time.

Metadata (name, version, labels, input size, normalisation, threshold) comes
from the sidecar ``<model>.json`` written by ``perception.export``, else from the
``scopecast`` entry of the ONNX metadata, else from defaults; keyword arguments
override both.

``inference_ms`` in the results is the whole ``predict`` time for that frame
(checks, resize, network, post-processing), not the network alone.

``runtime=`` (a kind for ``perception.runtimes.select_runtime`` such as
``"auto"``, ``"torch"``, ``"tensorrt"``, ``"triton"``, or a ``Runtime`` object)
runs the network there instead of the built-in onnxruntime session; pre- and
post-processing stay here (see docs/runtimes.md). The default, ``None``, is
the behaviour described above.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from perception.content_gate import GATE_OUTPUT
from perception.findings import ContentCheck, Finding, FrameFindings, ModelInfo
from perception.model import ModelError, check_frame
from perception.tracking import IouTracker, MotionTracker

DEFAULT_MEAN = (0.485, 0.456, 0.406)
DEFAULT_STD = (0.229, 0.224, 0.225)


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
            mean=tuple(float(v) for v in d.get("mean", DEFAULT_MEAN)),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d.get("std", DEFAULT_STD)),  # type: ignore[arg-type]
            threshold=float(d.get("threshold", 0.5)),
            min_area_frac=float(d.get("min_area_frac", 0.001)),
            extra={k: v for k, v in d.items() if k not in known},
        )


def sidecar_path(onnx_path: str | Path) -> Path:
    return Path(onnx_path).with_suffix(".json")


def _read_meta(path: Path) -> dict[str, Any]:
    side = sidecar_path(path)
    if side.is_file():
        try:
            return json.loads(side.read_text())
        except (OSError, ValueError) as e:
            raise ModelError(f"model metadata {side} is not valid JSON: {e}") from None
    return {}


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ModelError(f"device 'cuda' asked for but onnxruntime offers only {available}")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto":
        return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []) + ["CPUExecutionProvider"]
    raise ModelError(f"unknown device {device!r} (use 'auto', 'cpu' or 'cuda')")


def open_session(path: str | Path, *, threads: int = 1, device: str = "auto") -> Any:
    """An onnxruntime session with scopecast's options, to share between instances (see OnnxSegmentationModel)."""
    import onnxruntime as ort

    from perception.runtimes.onnxrt import session_options

    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads), providers=_providers(device))
    except ModelError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot load ONNX model {path}: {first}") from None


def _simplify(contour: np.ndarray, max_points: int) -> np.ndarray:
    """approxPolyDP with a tolerance grown until the polygon has at most max_points points."""
    eps = max(0.5, 0.003 * cv2.arcLength(contour, True))
    poly = cv2.approxPolyDP(contour, eps, True)
    while len(poly) > max_points:
        eps *= 1.5
        poly = cv2.approxPolyDP(contour, eps, True)
    return poly.reshape(-1, 2)


class OnnxSegmentationModel:
    """A binary segmentation ONNX (N,3,H,W float -> N,1,h,w logits) as a FrameModel."""

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
        runtime: Any = None,
        runtime_options: dict[str, dict[str, Any]] | None = None,
        session: Any = None,
        withhold_out_of_domain: bool = True,
    ) -> None:
        """`session`: an onnxruntime InferenceSession of this file to share (its `run` is thread-safe), so
        many streams of one model hold one copy of the graph and its arenas; each instance keeps its own tracker.

        `withhold_out_of_domain`: findings of a frame the content gate judges foreign are not given (the
        default); evaluation turns it off to score every image while still reporting the gate's verdict."""
        self.withhold_out_of_domain = withhold_out_of_domain
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        meta_dict = _read_meta(self.path)
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - onnxruntime is a base dependency
            raise ModelError(f"onnxruntime is not installed, cannot load {self.path}: {e}") from None
        from perception.runtimes.onnxrt import session_options

        opts = session_options(threads)
        # runtime=None keeps the built-in onnxruntime session; a kind ("auto", "tensorrt", ...) or a
        # perception.runtimes Runtime object runs the network there instead (pre/post stay here).
        self._runtime = self._make_runtime(runtime, threads, device, runtime_options) if runtime is not None else None
        try:
            if session is not None and self._runtime is None:
                self._session = session
            elif self._runtime is not None:
                # an onnxruntime runtime's session serves the checks below; others get a CPU session for them
                self._session = getattr(self._runtime, "session", None) or ort.InferenceSession(
                    str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
            else:
                self._session = ort.InferenceSession(str(self.path), sess_options=opts, providers=_providers(device))
        except ModelError:
            raise
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"cannot load ONNX model {self.path}: {first}") from None
        if not meta_dict:
            embedded = self._session.get_modelmeta().custom_metadata_map.get("scopecast")
            if embedded:
                try:
                    meta_dict = json.loads(embedded)
                except ValueError:
                    meta_dict = {}
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
        self._check_io()
        std = np.asarray(self.meta.std, np.float32)
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._offset = (-np.asarray(self.meta.mean, np.float32) / std).astype(np.float32)
        self.max_outline_points = max(3, int(max_outline_points))
        self.max_objects = max(1, int(max_objects))
        self.analysis_max_side = max(16, int(analysis_max_side))
        self.tracker = tracker if tracker is not None else MotionTracker()
        self._info = ModelInfo(name=self.meta.name, version=self.meta.version, task="segmentation",
                               labels=self.meta.labels)
        try:  # a first run proves the graph executes (and warms it up)
            self._run(np.zeros((1, 3, self.input_size[1], self.input_size[0]), np.float32))
        except ModelError:
            raise
        except Exception as e:
            raise ModelError(f"ONNX model {self.path} failed on a test input: {str(e).strip()[:300]}") from None
        if self._runtime is not None and not hasattr(self._runtime, "session"):
            self._session = None  # the CPU session only served the checks above; the runtime runs the network

    # -- validation -------------------------------------------------------------------------------
    def _check_io(self) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        where = self.path.name
        if len(inputs) != 1:
            raise ModelError(f"{where}: expected one image input, found {len(inputs)}: {[i.name for i in inputs]}")
        inp = inputs[0]
        if inp.type != "tensor(float)":
            raise ModelError(f"{where}: input {inp.name!r} must be float32, found {inp.type}")
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] != 3:
            raise ModelError(f"{where}: input {inp.name!r} must be N x 3 x H x W, found {shape}")
        size = self.meta.extra.get("input_size")
        h, w = shape[2], shape[3]
        if not (isinstance(h, int) and isinstance(w, int)):
            if size is None:
                raise ModelError(f"{where}: input {inp.name!r} has no fixed H x W ({shape}) and no input_size metadata")
            w, h = int(size[0]), int(size[1])
        elif size is not None and (int(size[0]), int(size[1])) != (w, h):
            raise ModelError(f"{where}: metadata input_size {size} does not match the graph input {w}x{h}")
        if w < 8 or h < 8:
            raise ModelError(f"{where}: input {inp.name!r} is too small: {w}x{h}")
        if not outputs:
            raise ModelError(f"{where}: graph has no output")
        self._setup_gate([o.name for o in outputs])
        out = outputs[0]
        oshape = list(out.shape)
        channels_ok = oshape[1] == 1 or not isinstance(oshape[1], int) if len(oshape) == 4 else False
        if not channels_ok:
            raise ModelError(f"{where}: output {out.name!r} must be N x 1 x h x w logits, found {oshape}")
        if out.type != "tensor(float)":
            raise ModelError(f"{where}: output {out.name!r} must be float32, found {out.type}")
        self._input_name, self._output_name = inp.name, out.name
        self.input_size = (w, h)
        self.batch_dynamic = not isinstance(shape[0], int)

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
        elif self._runtime is not None:  # a Runtime returns the logits only
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
        if self._runtime is not None and not hasattr(self._runtime, "session"):
            return [self._runtime.name]
        return list(self._session.get_providers())

    @property
    def runtime_name(self) -> str:
        """Which runtime runs the network (``onnxruntime-cpu``, ``tensorrt-fp16``, ``triton``...)."""
        if self._runtime is not None:
            return str(self._runtime.name)
        return "onnxruntime-cuda" if "CUDAExecutionProvider" in self.providers else "onnxruntime-cpu"

    def close(self) -> None:
        """Release the runtime (GPU engine, remote connection); the model is unusable afterwards."""
        if self._runtime is not None:
            self._runtime.close()

    def reset(self) -> None:
        """Forget tracks: call between unrelated frames or when a stream restarts."""
        self.tracker.reset()

    def predict(self, frame_rgb: np.ndarray) -> FrameFindings:
        return self.predict_batch([frame_rgb])[0]

    def predict_batch(self, frames: Sequence[np.ndarray]) -> list[FrameFindings]:
        """Findings for consecutive frames of one stream, run as one batch; tracks advance in order.

        ``inference_ms`` of each result is its own pre/post-processing time plus
        its share of the batched network run.
        """
        return [f for f, _ in self._predict(frames, want_masks=False)]

    def predict_with_mask(self, frame_rgb: np.ndarray) -> tuple[FrameFindings, np.ndarray]:
        """Findings plus the thresholded mask (bool, frame size) from one network run."""
        return self._predict([frame_rgb], want_masks=True)[0]  # type: ignore[return-value]

    def probabilities(self, frame_rgb: np.ndarray) -> np.ndarray:
        """Foreground probability per pixel of the frame (float32, H x W); tracker untouched."""
        check_frame(frame_rgb)
        t = self._preprocess(frame_rgb)
        small = self._sigmoid(self._run(t[None])[0][0])
        h, w = frame_rgb.shape[:2]
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    def segment(self, frame_rgb: np.ndarray) -> np.ndarray:
        """Thresholded mask (bool, frame size); tracker untouched."""
        return self.probabilities(frame_rgb) >= self.meta.threshold

    # -- internals --------------------------------------------------------------------------------
    def _preprocess(self, frame: np.ndarray) -> np.ndarray:
        w, h = self.input_size
        fh, fw = frame.shape[:2]
        small = frame
        if (fw, fh) != (w, h):
            k = int(min(fw / w, fh / h))
            if k >= 2:  # integer-factor area reduction first: same result as one INTER_AREA, much faster
                small = cv2.resize(small, (fw // k, fh // k), interpolation=cv2.INTER_AREA)
            sh, sw = small.shape[:2]
            interp = cv2.INTER_AREA if sw > w or sh > h else cv2.INTER_LINEAR
            small = cv2.resize(small, (w, h), interpolation=interp)
        x = small.astype(np.float32)
        x *= self._scale
        x += self._offset
        return x.transpose(2, 0, 1)

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(logits N x h x w, gate distances N or None) for a normalised batch."""
        if self._runtime is not None:
            return self._runtime.run(np.ascontiguousarray(batch, dtype=np.float32)), None
        names = [self._output_name] + ([GATE_OUTPUT] if self._gate_threshold is not None else [])
        if self.batch_dynamic or len(batch) == 1:
            outs = self._session.run(names, {self._input_name: np.ascontiguousarray(batch)})
        else:
            parts = [self._session.run(names, {self._input_name: batch[i : i + 1]}) for i in range(len(batch))]
            outs = [np.concatenate([p[k] for p in parts]) for k in range(len(names))]
        out = outs[0]
        if out.ndim != 4 or out.shape[0] != len(batch) or out.shape[1] != 1:
            raise ModelError(f"{self.path.name}: unexpected output shape {out.shape} for a batch of {len(batch)}")
        distances = None
        if len(outs) > 1:
            distances = np.asarray(outs[1], np.float64).reshape(-1)
            if distances.shape[0] != len(batch):
                raise ModelError(f"{self.path.name}: {GATE_OUTPUT} has {distances.shape[0]} values for "
                                 f"a batch of {len(batch)}")
        return out[:, 0], distances

    @staticmethod
    def _sigmoid(logits: np.ndarray) -> np.ndarray:
        return (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))).astype(np.float32)

    def _predict(self, frames: Sequence[np.ndarray], *, want_masks: bool):
        if len(frames) == 0:
            return []
        t_pre = []
        batch = []
        run_frames = getattr(self._runtime, "run_frames", None)
        for f in frames:
            t0 = time.perf_counter()
            check_frame(f)
            if run_frames is None:
                batch.append(self._preprocess(f))
            t_pre.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        distances: np.ndarray | None = None
        if run_frames is not None:  # the runtime resizes and normalises on its own device (GPU)
            logits = run_frames(frames, self.meta.mean, self.meta.std)
        else:
            logits, distances = self._run(np.stack(batch))
        t_run = (time.perf_counter() - t0) / len(frames)
        results = []
        for k, (f, lg, tp) in enumerate(zip(frames, logits, t_pre)):
            t0 = time.perf_counter()
            content = self._content(None if distances is None else float(distances[k]))
            withhold = content.in_domain is False and self.withhold_out_of_domain
            objects, mask = self._postprocess(self._sigmoid(lg), f.shape[1], f.shape[0], want_masks, withhold)
            ms = (tp + t_run + time.perf_counter() - t0) * 1000.0
            ff = FrameFindings(model=self._info, frame_size=(f.shape[1], f.shape[0]), objects=objects,
                               inference_ms=ms, content=content)
            results.append((ff, mask))
        return results

    def _make_runtime(self, runtime: Any, threads: int, device: str, options: dict[str, dict[str, Any]] | None):
        from perception.runtimes import select_runtime

        if not isinstance(runtime, str):
            if not (hasattr(runtime, "run") and hasattr(runtime, "name")):
                raise ModelError(f"runtime must be a kind name or a Runtime object, got {type(runtime).__name__}")
            return runtime
        opts = {k: dict(v) for k, v in (options or {}).items()}
        if runtime == "onnxruntime":
            opts.setdefault("onnxruntime", {}).setdefault("device", device)
        return select_runtime(runtime, self.path, threads=threads, options=opts)

    def _grid_size(self, width: int, height: int) -> tuple[int, int]:
        """Resolution at which components and outlines are found (then scaled to the frame)."""
        scale = min(1.0, self.analysis_max_side / max(width, height))
        return max(1, round(width * scale)), max(1, round(height * scale))

    def _postprocess(
        self, prob_small: np.ndarray, width: int, height: int, want_mask: bool = False, withhold: bool = False
    ) -> tuple[tuple[Finding, ...], np.ndarray | None]:
        if withhold:
            # Nothing is said about a frame the model does not know; tracks age as if nothing were seen.
            self.tracker.update([], [], [])
            mask = (cv2.resize(prob_small, (width, height), interpolation=cv2.INTER_LINEAR) >= self.meta.threshold
                    if want_mask else None)
            return (), mask
        gw, gh = self._grid_size(width, height)
        if prob_small.shape != (gh, gw):
            prob = cv2.resize(prob_small, (gw, gh), interpolation=cv2.INTER_LINEAR)
        else:
            prob = np.ascontiguousarray(prob_small)
        grid_mask = (prob >= self.meta.threshold).view(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(grid_mask, connectivity=8, ltype=cv2.CV_32S)
        min_area = max(1.0, self.meta.min_area_frac * gw * gh)
        comps = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]
        comps.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
        comps = comps[: self.max_objects]
        sx, sy = width / gw, height / gh
        label = self.meta.labels[0]
        found = []
        for i in comps:
            x, y, w, h, area = (int(v) for v in stats[i])
            inside = labels[y : y + h, x : x + w] == i
            score = float(prob[y : y + h, x : x + w][inside].mean())
            contours, _ = cv2.findContours(inside.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                           offset=(x, y))
            outline = []
            for c in contours:
                if len(c) < 3:
                    continue
                pts = _simplify(c, self.max_outline_points).astype(np.float64)
                px = np.clip(np.round((pts[:, 0] + 0.5) * sx - 0.5), 0, width - 1).astype(int)
                py = np.clip(np.round((pts[:, 1] + 0.5) * sy - 0.5), 0, height - 1).astype(int)
                outline.append(tuple(zip(px.tolist(), py.tolist())))
            box = (
                int(np.floor(x * sx)),
                int(np.floor(y * sy)),
                min(width, int(np.ceil((x + w) * sx))),
                min(height, int(np.ceil((y + h) * sy))),
            )
            found.append((label, score, box, tuple(outline), int(round(area * sx * sy))))
        ids = self.tracker.update([b for _, _, b, _, _ in found], [lab for lab, *_ in found], [s for _, s, *_ in found])
        objects = tuple(
            Finding(label=lab, score=score, box=box, outline=outline, track_id=tid, area_px=area)
            for (lab, score, box, outline, area), tid in zip(found, ids)
        )
        mask = None
        if want_mask:
            full = cv2.resize(prob_small, (width, height), interpolation=cv2.INTER_LINEAR)
            mask = full >= self.meta.threshold
        return objects, mask
