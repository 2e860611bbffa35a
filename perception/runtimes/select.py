"""How a runtime is chosen: by name, or ``auto`` (the fastest that works here).

``select_runtime("auto", path)`` tries TensorRT, then onnxruntime with the CUDA
provider, then onnxruntime on the CPU, and logs why each faster one was skipped
("tensorrt not installed", "no CUDA device", an engine build that failed...).
Asking for one runtime by name never falls back: it works or raises
``ModelError`` saying why.

Each runtime module is imported only when that runtime is built, so choosing
one never loads the others' packages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perception.model import ModelError
from perception.runtimes.base import Runtime, RuntimeUnavailable
from perception.runtimes.cuda import cuda_unavailable_reason

log = logging.getLogger("perception.runtimes")

KINDS = ("auto", "onnxruntime", "cpu", "cuda", "torch", "tensorrt", "triton")
AUTO_ORDER = ("tensorrt", "cuda", "cpu")


def _make(kind: str, path: Path | None, threads: int, options: dict[str, Any]) -> Runtime:
    if kind in ("onnxruntime", "cpu", "cuda"):
        from perception.runtimes.onnxrt import OnnxRuntime

        device = {"onnxruntime": options.pop("device", "auto"), "cpu": "cpu", "cuda": "cuda"}[kind]
        return OnnxRuntime(_need(path, kind), threads=threads, device=device, **options)
    if kind == "torch":
        from perception.runtimes.torch_rt import TorchRuntime

        return TorchRuntime(path, threads=threads, **options)
    if kind == "tensorrt":
        from perception.runtimes.tensorrt_rt import TensorRTRuntime

        return TensorRTRuntime(_need(path, kind), **options)
    if kind == "triton":
        from perception.runtimes.triton_rt import TritonRuntime

        return TritonRuntime(onnx_path=path, **options)
    raise ModelError(f"unknown runtime {kind!r} (choose from {', '.join(KINDS)})")


def _need(path: Path | None, kind: str) -> Path:
    if path is None:
        raise ModelError(f"runtime {kind!r} needs an ONNX model path")
    return path


def select_runtime(
    kind: str = "auto",
    onnx_path: str | Path | None = None,
    *,
    threads: int = 1,
    options: dict[str, dict[str, Any]] | None = None,
    on_skip: Callable[[str, str], None] | None = None,
) -> Runtime:
    """Build the runtime ``kind`` for ``onnx_path``.

    ``kind`` is one of ``auto``, ``onnxruntime`` (CUDA provider when present,
    else CPU), ``cpu``, ``cuda`` (onnxruntime CUDA provider, required),
    ``torch``, ``tensorrt``, ``triton``. ``options`` maps a runtime kind to
    keyword arguments for its constructor, e.g.
    ``{"tensorrt": {"max_batch": 4, "cache_dir": "..."}, "triton": {"url": "host:8001", "model_name": "polyp"}}``.

    ``auto`` tries ``tensorrt``, ``cuda``, ``cpu`` in that order; each skipped
    runtime is logged (INFO when it is simply absent, WARNING when it was
    present but failed) and passed to ``on_skip(kind, reason)``; the reasons
    are kept on the result as ``runtime.skipped`` when it allows attributes.
    Only the last (CPU) failure is raised.
    """
    options = {k: dict(v) for k, v in (options or {}).items()}
    path = Path(onnx_path) if onnx_path is not None else None
    if kind != "auto":
        if kind not in KINDS:
            raise ModelError(f"unknown runtime {kind!r} (choose from {', '.join(KINDS)})")
        return _make(kind, path, threads, options.get(kind, {}))
    if path is not None and not path.is_file():
        raise ModelError(f"model file not found: {path}")
    skipped: list[str] = []
    for k in AUTO_ORDER:
        reason = _precheck(k)
        if reason is None:
            try:
                rt = _make(k, path, threads, options.get(k, {}))
            except RuntimeUnavailable as e:
                reason = str(e)
            except ModelError as e:
                if k == AUTO_ORDER[-1]:
                    raise
                reason = f"failed: {e}"
                log.warning("runtime %s skipped: %s", k, reason)
            else:
                if skipped:
                    try:
                        rt.skipped = tuple(skipped)  # type: ignore[attr-defined]  # optional, not in Runtime
                    except AttributeError:
                        pass
                log.info("runtime selected: %s%s", rt.name, f" (skipped: {'; '.join(skipped)})" if skipped else "")
                return rt
        if k == AUTO_ORDER[-1]:  # pragma: no cover - CPU has no precheck
            raise ModelError(f"no runtime could run {path}: {reason}")
        log.info("runtime %s skipped: %s", k, reason)
        skipped.append(f"{k}: {reason}")
        if on_skip is not None:
            on_skip(k, reason)
    raise ModelError("no runtime available")  # pragma: no cover


def _precheck(kind: str) -> str | None:
    """Cheap reason why ``kind`` cannot work here, without building anything (None: try it)."""
    import importlib.util

    if kind == "tensorrt":
        if importlib.util.find_spec("tensorrt") is None:
            return "tensorrt not installed (pip install 'scopecast[gpu]')"
        return cuda_unavailable_reason()
    if kind == "cuda":
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime not installed"
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "onnxruntime has no CUDA provider (install onnxruntime-gpu)"
        return None  # the session itself tells whether a device answered
    return None
