"""onnxruntime: the CPU default (``threads`` intra-op threads), the CUDA provider when asked or present.

The runtime every segmentation model uses unless told otherwise. Sessions run
sequentially with full graph optimisation and idle worker threads that do not
spin (the CPU is shared with video encoding). A graph with a fixed batch of 1
is run frame by frame. It holds the whole graph, so besides the logits it can
return the content gate's ``domain_distance`` (``run_with``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perception.model import ModelError
from perception.runtimes.base import (
    EMBEDDED_METADATA_KEY,
    GraphIO,
    RuntimeUnavailable,
    check_batch,
    check_io,
    check_logits,
    model_metadata,
)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def providers_for(device: str) -> list[str]:
    """onnxruntime providers for ``device`` (auto | cpu | cuda); ``ModelError`` for an unknown one."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a base dependency
        raise RuntimeUnavailable(f"onnxruntime is not installed: {e}") from None
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        if CUDA not in available:
            raise RuntimeUnavailable(
                f"device 'cuda' asked for but onnxruntime offers only {available} (install onnxruntime-gpu)"
            )
        return [CUDA, CPU]
    if device == "auto":
        return ([CUDA] if CUDA in available else []) + [CPU]
    raise ModelError(f"unknown device {device!r} (use 'auto', 'cpu' or 'cuda')")


def session_options(threads: int) -> Any:  # onnxruntime.SessionOptions: onnxruntime ships no types
    """Options for every onnxruntime session of scopecast: few threads that never spin,
    because the CPU is shared with video decoding and encoding."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


class OnnxRuntime:
    """An onnxruntime ``InferenceSession`` behind the ``Runtime`` interface (and ``ExtraOutputs``, ``DescribesGraph``).

    ``run`` is thread-safe (onnxruntime's is), so one instance can serve many
    models of the same file: ``perception.builtin`` shares one per shipped model.
    """

    def __init__(
        self, path: str | Path, *, threads: int = 1, device: str = "auto", input_size: tuple[int, int] | None = None
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        import onnxruntime as ort

        providers = providers_for(device)
        opts = session_options(threads)
        try:
            self.session: Any = ort.InferenceSession(  # onnxruntime ships no types
                str(self.path), sess_options=opts, providers=providers
            )
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"cannot load ONNX model {self.path}: {first}") from None
        got = self.session.get_providers()
        if device == "cuda" and CUDA not in got:
            raise RuntimeUnavailable(
                f"onnxruntime CUDA provider did not start for {self.path.name} "
                "(no CUDA device, or CUDA/cuDNN libraries missing)"
            )
        self.device = "cuda" if CUDA in got else "cpu"
        self.name = f"onnxruntime-{self.device}"
        embedded = self.session.get_modelmeta().custom_metadata_map.get(EMBEDDED_METADATA_KEY)
        self.metadata: dict[str, Any] = model_metadata(self.path, embedded)
        if input_size is None:
            size = self.metadata.get("input_size")
            input_size = (int(size[0]), int(size[1])) if size else None
        self.io: GraphIO = check_io(
            self.path.name,
            [(i.name, i.type, list(i.shape)) for i in self.session.get_inputs()],
            [(o.name, o.type, list(o.shape)) for o in self.session.get_outputs()],
            input_size,
        )
        self.input_size = self.io.input_size
        self.output_names = self.io.output_names
        self.max_batch: int | None = None if self.io.batch_dynamic else 1

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.run_with(batch, ())[0]

    def run_with(self, batch: np.ndarray, extra: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """(N x h x w logits, the ``extra`` outputs as the graph gives them) for one batch."""
        batch = check_batch(batch, self.input_size, self.path.name)
        io = self.io
        names = [io.output_name, *extra]
        try:
            if io.batch_dynamic or len(batch) == io.fixed_batch:
                outs = list(self.session.run(names, {io.input_name: batch}))
            else:
                parts = [self.session.run(names, {io.input_name: batch[i : i + 1]}) for i in range(len(batch))]
                outs = [np.concatenate([p[k] for p in parts]) for k in range(len(names))]
        except Exception as e:
            raise ModelError(
                f"{self.path.name}: onnxruntime failed on a {tuple(batch.shape)} batch: {str(e).strip()[:300]}"
            ) from None
        return check_logits(outs[0], len(batch), self.path.name), [np.asarray(o) for o in outs[1:]]

    def close(self) -> None:
        self.session = None

    def __repr__(self) -> str:
        return f"OnnxRuntime({self.path.name!r}, providers={self.providers if self.session else []})"
