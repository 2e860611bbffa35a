"""Triton Inference Server as a remote runtime, over gRPC (``tritonclient[grpc]``).

On construction the runtime checks that the server is live, that the model is
ready, and that the model's metadata has one FP32 input ``[-1, 3, H, W]`` and
an FP32 output ``[-1, 1, h, w]`` (names and sizes compared with the local ONNX
when one is given), so a wrong model name or an incompatible model fails at
start-up with a ``ModelError`` that says which, not on the first frame.
Batches larger than the model's ``max_batch_size`` are split.

Serve an exported model with ``perception.runtimes.triton_repo.write_model_repository``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from perception.model import ModelError
from perception.runtimes.base import (
    GraphIO,
    RuntimeUnavailable,
    check_batch,
    check_logits,
    inspect_onnx,
)

log = logging.getLogger("perception.runtimes.triton")

DEFAULT_URL = "127.0.0.1:8001"
INSTALL_HINT = "pip install 'scopecast[triton]' (tritonclient[grpc])"


def _msg(e: BaseException) -> str:
    m = e.message() if hasattr(e, "message") and callable(e.message) else str(e)
    return " ".join(str(m).split())[:300]


class TritonRuntime:
    def __init__(
        self,
        *,
        model_name: str | None = None,
        url: str = DEFAULT_URL,
        model_version: str = "",
        onnx_path: str | Path | None = None,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
    ) -> None:
        try:
            import tritonclient.grpc as grpcclient
            from tritonclient.utils import InferenceServerException
        except ImportError as e:
            raise RuntimeUnavailable(f"tritonclient not installed ({e}); {INSTALL_HINT}") from None
        self._grpc, self._exc = grpcclient, InferenceServerException
        io = None
        if onnx_path is not None:
            io, _meta = inspect_onnx(onnx_path)
            model_name = model_name or Path(onnx_path).stem
        if not model_name:
            raise ModelError("triton runtime needs a model_name (or an onnx_path to take it from)")
        self.url, self.model_name, self.model_version = url, model_name, str(model_version)
        self.timeout_s = float(timeout_s)
        where = f"Triton at {url}"
        try:
            self.client = grpcclient.InferenceServerClient(url=url, verbose=False)
        except Exception as e:
            raise ModelError(f"cannot reach {where}: {_msg(e)}") from None
        try:
            live = self.client.is_server_live(client_timeout=connect_timeout_s)
        except Exception as e:
            self.client.close()
            raise ModelError(f"cannot reach {where}: {_msg(e)}") from None
        if not live:
            self.client.close()
            raise ModelError(f"{where} answers but is not live")
        label = f"model {model_name!r}" + (f" version {self.model_version}" if self.model_version else "")
        try:
            ready = self.client.is_model_ready(model_name, self.model_version, client_timeout=connect_timeout_s)
            if not ready:
                raise ModelError(f"{label} is not ready on {where} (not in its repository, or failed to load)")
            meta = self.client.get_model_metadata(
                model_name, self.model_version, as_json=True, client_timeout=connect_timeout_s
            )
            config = self.client.get_model_config(
                model_name, self.model_version, as_json=True, client_timeout=connect_timeout_s
            )
        except ModelError:
            self.client.close()
            raise
        except Exception as e:
            self.client.close()
            raise ModelError(f"{label} on {where}: {_msg(e)}") from None
        self.max_batch = int(config.get("config", config).get("max_batch_size", 0) or 0)
        self._check_metadata(meta, io, f"{label} on {where}")
        self.name = "triton"

    def _check_metadata(self, meta: dict[str, Any], io: GraphIO | None, where: str) -> None:
        inputs, outputs = meta.get("inputs", []), meta.get("outputs", [])
        if len(inputs) != 1:
            raise ModelError(f"{where}: expected one image input, server reports {[i.get('name') for i in inputs]}")
        if not outputs:
            raise ModelError(f"{where}: the model has no output")
        inp, out = inputs[0], outputs[0]

        def dims(t: dict[str, Any]) -> list[int]:
            return [int(d) for d in t.get("shape", [])]

        ishape, oshape = dims(inp), dims(out)
        if inp.get("datatype") != "FP32" or len(ishape) != 4 or ishape[1] != 3:
            raise ModelError(
                f"{where}: input {inp.get('name')!r} must be FP32 [-1, 3, H, W], server reports "
                f"{inp.get('datatype')} {ishape}"
            )
        if out.get("datatype") != "FP32" or len(oshape) != 4 or oshape[1] not in (1, -1):
            raise ModelError(
                f"{where}: output {out.get('name')!r} must be FP32 [-1, 1, h, w], server reports "
                f"{out.get('datatype')} {oshape}"
            )
        h, w = ishape[2], ishape[3]
        if h <= 0 or w <= 0:
            if io is None:
                raise ModelError(f"{where}: input H x W is not fixed ({ishape}); pass onnx_path to know the size")
            w, h = io.input_size
        if io is not None:
            if (inp["name"], out["name"]) != (io.input_name, io.output_name):
                raise ModelError(
                    f"{where}: tensors {inp['name']!r} -> {out['name']!r} do not match the local ONNX "
                    f"({io.input_name!r} -> {io.output_name!r})"
                )
            if (w, h) != io.input_size:
                raise ModelError(
                    f"{where}: input {w}x{h} does not match the local ONNX input {io.input_size[0]}x{io.input_size[1]}"
                )
        self.input_name, self.output_name = inp["name"], out["name"]
        self.input_size = (int(w), int(h))

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        grpc = self._grpc
        x = grpc.InferInput(self.input_name, list(batch.shape), "FP32")
        x.set_data_from_numpy(batch)
        try:
            res = self.client.infer(
                self.model_name,
                [x],
                model_version=self.model_version,
                outputs=[grpc.InferRequestedOutput(self.output_name)],
                client_timeout=self.timeout_s,
            )
        except self._exc as e:
            raise ModelError(
                f"Triton at {self.url}, model {self.model_name!r}: inference failed on a "
                f"{tuple(batch.shape)} batch: {_msg(e)}"
            ) from None
        out: np.ndarray | None = res.as_numpy(self.output_name)
        if out is None:
            raise ModelError(f"Triton at {self.url}: no {self.output_name!r} in the response")
        return out

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(batch, self.input_size, f"triton model {self.model_name!r}")
        step = self.max_batch if self.max_batch > 0 else len(batch)
        parts = [self._infer(batch[i : i + step]) for i in range(0, len(batch), step)]
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return check_logits(out, len(batch), f"triton model {self.model_name!r}")

    def close(self) -> None:
        try:
            self.client.close()
        except Exception as e:  # pragma: no cover
            log.debug("closing the Triton client failed: %s", e)
