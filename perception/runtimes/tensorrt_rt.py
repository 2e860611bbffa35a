"""TensorRT: an engine built from the ONNX, cached on disk, with pre-processing on the GPU.

Written against the TensorRT 10 Python API (``tensorrt`` >= 10.0) and tolerant
of 11.x; NOT yet run on a GPU (see docs/runtimes.md).

* The engine is built once per (model sha256, GPU name + compute capability,
  TensorRT version, precision, max batch, input size) and cached as
  ``<cache_dir>/<model>-<key>.engine`` (default cache dir
  ``$SCOPECAST_ENGINE_CACHE`` or ``~/.cache/scopecast/engines``). A cached
  engine that no longer deserialises is rebuilt.
* A timing cache per GPU and TensorRT version (``timing-<gpu>-trt<ver>.cache``
  in the same folder) makes rebuilds (new weights, other batch sizes) fast.
* ``precision="fp16"`` sets ``BuilderFlag.FP16`` (TensorRT 10). TensorRT 11
  removed that flag (strongly typed networks only); there the engine is built
  in FP32 and a warning says so, unless the ONNX itself is already FP16.
* One optimisation profile covers batch 1..``max_batch`` (optimum
  ``opt_batch``); larger batches are split.
* Progress: TensorRT's ``IProgressMonitor`` (10.0+) reports phases and steps
  as log lines (and to ``progress(msg)`` if given); without it a heartbeat line
  is logged every few seconds while the build runs.
* I/O buffers are torch CUDA tensors on a dedicated CUDA stream;
  ``run_frames`` resizes and normalises uint8 frames on the GPU.

``import tensorrt`` happens only when this runtime is built; without it the
error says to install ``scopecast[gpu]``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perception.model import ModelError
from perception.runtimes.base import (
    RuntimeUnavailable,
    check_batch,
    check_logits,
    file_sha256,
    inspect_onnx,
)
from perception.runtimes.cuda import cuda_unavailable_reason
from perception.runtimes.gpu_preprocess import torch_preprocess

if TYPE_CHECKING:  # torch comes with the gpu extra; imported when the runtime is built
    import torch

log = logging.getLogger("perception.runtimes.tensorrt")

INSTALL_HINT = "pip install 'scopecast[gpu]' (TensorRT 10 and a CUDA build of torch)"


def default_cache_dir() -> Path:
    env = os.environ.get("SCOPECAST_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "scopecast" / "engines"


def import_tensorrt() -> Any:  # the tensorrt module; it ships no types
    try:
        import tensorrt as trt
    except ImportError as e:
        raise RuntimeUnavailable(f"tensorrt not installed ({e}); {INSTALL_HINT}") from None
    return trt


def engine_key(
    model_sha256: str, gpu: str, trt_version: str, precision: str, max_batch: int, input_size: tuple[int, int]
) -> str:
    """Short hex key naming a cached engine; any change of its inputs gives a new engine."""
    text = "|".join(
        [model_sha256, gpu, trt_version, precision, str(int(max_batch)), f"{input_size[0]}x{input_size[1]}"]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)[:60]


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class BuildProgress:
    """Turns TensorRT build phases into log lines (at most one per phase per ``every_s`` seconds)."""

    def __init__(self, report: Callable[[str], None], every_s: float = 2.0) -> None:
        self.report = report
        self.every_s = every_s
        self._lock = threading.Lock()
        self._steps: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self.t0 = time.monotonic()

    def start(self, phase: str, parent: str | None, steps: int) -> None:
        with self._lock:
            self._steps[phase] = max(1, int(steps))
            self._last[phase] = 0.0
        indent = "  " if parent else ""
        self.report(f"{indent}{phase}: started ({steps} steps)")

    def step(self, phase: str, step: int) -> bool:
        now = time.monotonic()
        with self._lock:
            total = self._steps.get(phase, 1)
            due = now - self._last.get(phase, 0.0) >= self.every_s
            if due:
                self._last[phase] = now
        if due:
            self.report(f"{phase}: {min(step + 1, total)}/{total} ({now - self.t0:.0f} s)")
        return True  # never cancel

    def finish(self, phase: str) -> None:
        with self._lock:
            self._steps.pop(phase, None)
        self.report(f"{phase}: done ({time.monotonic() - self.t0:.0f} s)")


def _monitor_for(trt: Any, progress: BuildProgress) -> object | None:
    """A ``trt.IProgressMonitor`` forwarding to ``progress``, or None when this TensorRT has none."""
    base: Any = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class _Monitor(base):  # TensorRT's IProgressMonitor (found at run time: older versions have none)
        def __init__(self) -> None:
            super().__init__()  # pybind11 bases must be initialised explicitly

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            progress.start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return progress.step(phase_name, step)

        def phase_finish(self, phase_name: str) -> None:
            progress.finish(phase_name)

    return _Monitor()


class _Heartbeat:
    """Logs "still building" every ``every_s`` seconds while a build without progress reports runs."""

    def __init__(self, report: Callable[[str], None], every_s: float = 5.0) -> None:
        self.report, self.every_s = report, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trt-build-heartbeat", daemon=True)

    def _loop(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(self.every_s):
            self.report(f"building TensorRT engine... {time.monotonic() - t0:.0f} s")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


class TensorRTRuntime:
    """A TensorRT engine for a segmentation ONNX behind the ``Runtime`` interface."""

    def __init__(
        self,
        onnx_path: str | Path,
        *,
        precision: str = "fp16",
        max_batch: int = 8,
        opt_batch: int | None = None,
        cache_dir: str | Path | None = None,
        workspace_mb: int = 1024,
        device: int = 0,
        rebuild: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(onnx_path)
        io, _meta = inspect_onnx(self.path)  # ModelError for missing/corrupt/mismatched graphs
        if precision not in ("fp16", "fp32"):
            raise ModelError(f"unknown TensorRT precision {precision!r} (use 'fp16' or 'fp32')")
        if max_batch < 1:
            raise ModelError(f"max_batch must be >= 1, got {max_batch}")
        if not io.batch_dynamic and max_batch != io.fixed_batch:
            max_batch = int(io.fixed_batch or 1)
        trt = import_tensorrt()
        reason = cuda_unavailable_reason()
        if reason is not None:
            raise RuntimeUnavailable(f"tensorrt needs a CUDA device: {reason}")
        import torch

        self._trt, self._torch = trt, torch
        self.io = io
        self.input_size = io.input_size
        self.max_batch = int(max_batch)
        self.opt_batch = int(opt_batch or min(self.max_batch, 4))
        self.precision = precision
        self.workspace_mb = workspace_mb
        self.device = torch.device("cuda", device)
        props = torch.cuda.get_device_properties(self.device)
        self.gpu_name = f"{props.name} sm{props.major}{props.minor}"
        self.trt_version = str(trt.__version__)
        self._report = progress or (lambda msg: log.info("%s: %s", self.path.name, msg))
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.model_sha256 = file_sha256(self.path)
        key = engine_key(self.model_sha256, self.gpu_name, self.trt_version, precision, self.max_batch, self.input_size)
        self.engine_path = self.cache_dir / f"{_safe(self.path.stem)}-{key}.engine"
        self.timing_cache_path = self.cache_dir / f"timing-{_safe(self.gpu_name)}-trt{_safe(self.trt_version)}.cache"
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = None
        self.built_now = False
        with torch.cuda.device(self.device):
            if self.engine_path.is_file() and not rebuild:
                self.engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
                if self.engine is None:
                    log.warning("cached engine %s does not load any more; rebuilding", self.engine_path)
            if self.engine is None:
                plan = self._build()
                self.engine = self._runtime.deserialize_cuda_engine(plan)
                if self.engine is None:
                    raise ModelError(f"TensorRT built an engine for {self.path.name} but cannot load it")
                self.built_now = True
            self.context = self.engine.create_execution_context()
            if self.context is None:
                raise ModelError(
                    f"TensorRT could not create an execution context for {self.path.name} (out of GPU memory?)"
                )
            self._stream = torch.cuda.Stream(device=self.device)
        self._in_dtype = self._torch_dtype(self.engine.get_tensor_dtype(io.input_name))
        self._out_dtype = self._torch_dtype(self.engine.get_tensor_dtype(io.output_name))
        self.name = f"tensorrt-{precision}"

    # -- building ---------------------------------------------------------------------------------
    def _build(self) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10+
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(str(self.path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelError(f"TensorRT cannot parse {self.path.name}: {errors[:500] or 'unknown parser error'}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self._workspace_bytes()))
        built_precision = self.precision
        if self.precision == "fp16":
            flag = getattr(trt.BuilderFlag, "FP16", None)
            if flag is not None:
                config.set_flag(flag)
            else:
                built_precision = "fp32 (TensorRT 11 has no FP16 flag; export an FP16 ONNX for half precision)"
                log.warning("%s: %s", self.path.name, built_precision)
        profile = builder.create_optimization_profile()
        w, h = self.input_size
        profile.set_shape(
            self.io.input_name, (1, 3, h, w), (min(self.opt_batch, self.max_batch), 3, h, w), (self.max_batch, 3, h, w)
        )
        config.add_optimization_profile(profile)
        old = b""
        if self.timing_cache_path.is_file():
            old = self.timing_cache_path.read_bytes()
        timing = config.create_timing_cache(old)
        if not config.set_timing_cache(timing, False):
            timing = config.create_timing_cache(b"")
            config.set_timing_cache(timing, False)
        progress = BuildProgress(self._report)
        monitor = _monitor_for(trt, progress)
        if monitor is not None and hasattr(config, "progress_monitor"):
            config.progress_monitor = monitor
        self._report(
            f"building TensorRT engine ({built_precision}, batch 1..{self.max_batch}, {w}x{h}) "
            f"on {self.gpu_name}, TensorRT {self.trt_version}; this can take minutes"
        )
        t0 = time.monotonic()
        try:
            if monitor is not None and hasattr(config, "progress_monitor"):
                plan = builder.build_serialized_network(network, config)
            else:
                with _Heartbeat(self._report):
                    plan = builder.build_serialized_network(network, config)
        except Exception as e:
            raise ModelError(f"TensorRT engine build failed for {self.path.name}: {str(e).strip()[:300]}") from None
        if plan is None:
            raise ModelError(
                f"TensorRT engine build failed for {self.path.name} (see the TensorRT log above; "
                "unsupported layer or not enough GPU memory?)"
            )
        data = bytes(plan)
        try:
            _atomic_write(self.engine_path, data)
            _atomic_write(self.timing_cache_path, bytes(config.get_timing_cache().serialize()))
        except OSError as e:
            log.warning("could not cache the TensorRT engine in %s: %s", self.cache_dir, e)
        self._report(f"engine built in {time.monotonic() - t0:.1f} s -> {self.engine_path}")
        return data

    def _workspace_bytes(self) -> int:
        return max(64, int(self.workspace_mb)) << 20

    def _torch_dtype(self, trt_dtype: Any) -> torch.dtype:
        trt, th = self._trt, self._torch
        table: dict[Any, torch.dtype] = {trt.DataType.FLOAT: th.float32, trt.DataType.HALF: th.float16}
        if trt_dtype not in table:
            raise ModelError(f"{self.path.name}: TensorRT engine I/O type {trt_dtype} is not supported")
        return table[trt_dtype]

    # -- running ----------------------------------------------------------------------------------
    def _execute(self, x: torch.Tensor) -> torch.Tensor:
        """Run a CUDA tensor N x 3 x H x W (N <= max_batch) -> CUDA float32 N x h x w."""
        io = self.io
        n = int(x.shape[0])
        x = x.to(self._in_dtype).contiguous()
        ctx = self.context
        if not ctx.set_input_shape(io.input_name, tuple(x.shape)):
            raise ModelError(
                f"{self.path.name}: TensorRT rejected input shape {tuple(x.shape)} "
                f"(engine built for batch 1..{self.max_batch})"
            )
        oshape = tuple(ctx.get_tensor_shape(io.output_name))
        out: torch.Tensor = self._torch.empty(oshape, dtype=self._out_dtype, device=self.device)
        ctx.set_tensor_address(io.input_name, int(x.data_ptr()))
        ctx.set_tensor_address(io.output_name, int(out.data_ptr()))
        if not ctx.execute_async_v3(self._stream.cuda_stream):
            raise ModelError(f"{self.path.name}: TensorRT execution failed on a batch of {n}")
        out = out.float()
        return out[:, 0] if out.ndim == 4 else out

    def _run_tensor(self, x: torch.Tensor) -> np.ndarray:
        torch = self._torch
        with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            parts = [self._execute(x[i : i + self.max_batch]) for i in range(0, int(x.shape[0]), self.max_batch)]
            y = parts[0] if len(parts) == 1 else torch.cat(parts)
            res = y.cpu().numpy()  # synchronises the stream
        return res

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(batch, self.input_size, self.path.name)
        torch = self._torch
        with torch.cuda.stream(self._stream):
            x = torch.from_numpy(batch).pin_memory().to(self.device, non_blocking=True)
        return check_logits(self._run_tensor(x), len(batch), self.path.name)

    def run_frames(self, frames: Sequence[np.ndarray], mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
        """uint8 RGB frames (any sizes) -> logits; resize and normalise on the GPU."""
        with self._torch.cuda.stream(self._stream):
            x = torch_preprocess(frames, self.input_size, mean, std, device=self.device)
        return check_logits(self._run_tensor(x), len(frames), self.path.name)

    def close(self) -> None:
        self.context = None
        self.engine = None

    def __repr__(self) -> str:
        return f"TensorRTRuntime({self.path.name!r}, {self.precision}, max_batch={self.max_batch}, {self.gpu_name})"
