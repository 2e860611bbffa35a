"""GPU utilisation, memory and temperature through NVML (``nvidia-ml-py``), when there is a GPU.

``gpu_snapshot()`` returns one ``GpuStats`` per GPU, or an empty list when
pynvml is missing, no driver is loaded or there is no GPU: it never raises, so
callers can poll it on any machine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

log = logging.getLogger("perception.runtimes.gpu")

_lock = threading.Lock()
_state: dict[str, Any] = {"init": None, "reason": None}


@dataclass(frozen=True)
class GpuStats:
    index: int
    name: str
    utilisation_pct: float | None
    memory_used_mb: float | None
    memory_total_mb: float | None
    temperature_c: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _init() -> ModuleType | None:
    """The pynvml module once NVML initialised, else None (the reason is kept for ``unavailable_reason``)."""
    with _lock:
        if _state["init"] is not None or _state["reason"] is not None:
            module: ModuleType | None = _state["init"]
            return module
        try:
            import pynvml
        except ImportError:
            _state["reason"] = "nvidia-ml-py (pynvml) not installed"
            return None
        try:
            pynvml.nvmlInit()
        except Exception as e:  # NVMLError_LibraryNotFound / DriverNotLoaded / ...
            _state["reason"] = f"NVML unavailable: {e}"
            return None
        _state["init"] = pynvml
        loaded: ModuleType = pynvml
        return loaded


def unavailable_reason() -> str | None:
    """Why there is no telemetry (None when NVML works)."""
    _init()
    reason: str | None = _state["reason"]
    return reason


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return None


def gpu_snapshot() -> list[GpuStats]:
    """Current stats of every GPU NVML sees; [] on CPU-only machines. Never raises."""
    nv = _init()
    if nv is None:
        return []
    try:
        count = nv.nvmlDeviceGetCount()
    except Exception as e:
        log.debug("NVML device count failed: %s", e)
        return []
    stats = []
    for i in range(count):
        h = _try(nv.nvmlDeviceGetHandleByIndex, i)
        if h is None:
            continue
        name = _try(nv.nvmlDeviceGetName, h)
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        util = _try(nv.nvmlDeviceGetUtilizationRates, h)
        mem = _try(nv.nvmlDeviceGetMemoryInfo, h)
        temp = _try(nv.nvmlDeviceGetTemperature, h, getattr(nv, "NVML_TEMPERATURE_GPU", 0))
        stats.append(
            GpuStats(
                index=i,
                name=str(name or f"GPU {i}"),
                utilisation_pct=float(util.gpu) if util is not None else None,
                memory_used_mb=mem.used / 2**20 if mem is not None else None,
                memory_total_mb=mem.total / 2**20 if mem is not None else None,
                temperature_c=float(temp) if temp is not None else None,
            )
        )
    return stats


def gpu_stats(index: int = 0) -> GpuStats | None:
    """Stats of one GPU, or None when there is no such GPU / no NVML."""
    for s in gpu_snapshot():
        if s.index == index:
            return s
    return None
