"""PyTorch eager (optionally ``torch.compile``): the network rebuilt from the ONNX weights or a checkpoint.

From an ONNX file the net is rebuilt with ``perception.net_loading.net_from_onnx``
(same architecture, BatchNorm already folded into the convolutions); from a
training checkpoint with ``perception.net_loading.load_checkpoint_net``. On CUDA
the network can run in half precision (``half=True``); logits come back as
float32 numpy.

``threads`` sets ``torch.set_num_threads`` for the whole process (PyTorch has
no per-model setting); pass ``threads=None`` to leave it alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perception.model import ModelError
from perception.runtimes.base import (
    RuntimeUnavailable,
    check_batch,
    check_logits,
    inspect_onnx,
)

if TYPE_CHECKING:  # torch is imported when the runtime is built
    from torch import nn


class TorchRuntime:
    def __init__(
        self,
        onnx_path: str | Path | None = None,
        *,
        checkpoint: str | Path | None = None,
        device: str = "auto",
        threads: int | None = 1,
        compile: bool = False,
        half: bool = False,
    ) -> None:
        try:
            import torch
        except ImportError as e:
            raise RuntimeUnavailable(f"torch is not installed: {e}") from None
        from perception import net_loading

        if (onnx_path is None) == (checkpoint is None):
            raise ModelError("torch runtime needs exactly one of an ONNX path or a checkpoint")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device not in ("cpu", "cuda"):
            raise ModelError(f"unknown device {device!r} (use 'auto', 'cpu' or 'cuda')")
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeUnavailable("torch runtime on 'cuda' asked for but no CUDA device is available")
        if threads is not None:
            torch.set_num_threads(max(1, int(threads)))
        if onnx_path is not None:
            path = Path(onnx_path)
            io, meta = inspect_onnx(path)  # ModelError for missing / corrupt / mismatched graphs
            if "arch" not in meta:
                raise ModelError(
                    f"{path.name}: no 'arch' in the model metadata; the torch runtime can only "
                    "rebuild networks exported by perception.export"
                )
            if "quantization" in meta:
                source = meta.get("derived_from", {}).get("name", "its float source")
                raise RuntimeUnavailable(
                    f"{path.name} is an 8-bit integer graph: the torch runtime rebuilds float networks only "
                    f"(run it with onnxruntime, or run {source!r} on torch)"
                )
            try:
                net = net_loading.net_from_onnx(path)
            except (ValueError, KeyError, TypeError) as e:
                raise ModelError(f"{path.name}: cannot rebuild the torch network from the ONNX weights: {e}") from None
            self.input_size = io.input_size
            self.source = path
        else:
            assert checkpoint is not None  # exactly one of the two was given, checked above
            path = Path(checkpoint)
            if not path.is_file():
                raise ModelError(f"checkpoint not found: {path}")
            try:
                net, ckpt = net_loading.load_checkpoint_net(path)
            except Exception as e:
                raise ModelError(f"cannot load checkpoint {path}: {str(e).strip()[:200]}") from None
            size = int(ckpt["config"]["input_size"])
            self.input_size = (size, size)
            self.source = path
        self.device = device
        self.dtype = torch.float16 if (half and device == "cuda") else torch.float32
        self.net: nn.Module | None = net.eval().to(device=device, dtype=self.dtype)
        self.compiled = bool(compile)
        self._fn: Any = self.net
        if compile:
            try:
                self._fn = torch.compile(self.net, dynamic=False)
            except Exception as e:
                raise ModelError(f"torch.compile failed for {path.name}: {e}") from None
        self.name = (
            f"torch-{device}" + ("-compiled" if compile else "") + ("-fp16" if self.dtype == torch.float16 else "")
        )
        self.max_batch: int | None = None
        self._torch = torch

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        batch = check_batch(batch, self.input_size, self.source.name)
        try:
            with torch.inference_mode():
                x = torch.from_numpy(batch).to(self.device, dtype=self.dtype, non_blocking=True)
                y = self._fn(x)
                out = y.float().cpu().numpy()
        except Exception as e:
            raise ModelError(
                f"{self.source.name}: torch failed on a {tuple(batch.shape)} batch: {str(e).strip()[:300]}"
            ) from None
        return check_logits(out, len(batch), self.source.name)

    def close(self) -> None:
        self.net = None
        self._fn = None
        if self.device == "cuda":
            self._torch.cuda.empty_cache()
