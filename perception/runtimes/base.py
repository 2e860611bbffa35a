"""What every inference runtime offers, and the checks they share.

A runtime runs the segmentation network and nothing else: a batch of
preprocessed frames in (N x 3 x H x W float32, normalised RGB), logits out
(N x h x w float32, one channel). Pre- and post-processing (resize, normalise,
sigmoid, components, tracking) live in ``perception.segmentation_model``. A
runtime may additionally offer capabilities, each a protocol here:
``RunsFrames`` (resize/normalise on its own device), ``ExtraOutputs`` (named
outputs beside the logits, e.g. the content gate's distance) and
``DescribesGraph`` (it validated the ONNX and read its metadata itself).

Also here: the graph I/O check (``check_io``, ``inspect_onnx``, ``GraphIO``),
the model metadata rule (``model_metadata``: sidecar, else embedded), and the
batch/logits checks every runtime applies. Choosing a runtime is
``perception.runtimes.select``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from perception.model import ModelError


class RuntimeUnavailable(ModelError):
    """The runtime cannot be used on this machine (package missing, no GPU); ``auto`` skips it."""


@runtime_checkable
class Runtime(Protocol):
    """Runs the network: ``run(N x 3 x H x W float32) -> N x h x w float32 logits``."""

    name: str
    input_size: tuple[int, int]  # network input (width, height)

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


@runtime_checkable
class RunsFrames(Protocol):
    """Optional capability: the runtime resizes and normalises uint8 RGB frames on its own device (TensorRT's GPU)."""

    def run_frames(self, frames: Sequence[np.ndarray], mean: Sequence[float], std: Sequence[float]) -> np.ndarray: ...


@runtime_checkable
class ExtraOutputs(Protocol):
    """Optional capability: the runtime holds the whole graph and returns named outputs beside the logits.

    The content gate's ``domain_distance`` travels this way; a runtime without
    it returns the logits only, and the model says the gate is unavailable there.
    """

    output_names: tuple[str, ...]  # every output of the graph, logits first

    def run_with(self, batch: np.ndarray, extra: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]: ...


@runtime_checkable
class DescribesGraph(Protocol):
    """Optional capability: the runtime opened and validated the ONNX itself, so the model need not read it again."""

    io: GraphIO
    metadata: dict[str, Any]


@dataclass(frozen=True)
class GraphIO:
    """The one input and the first output of a segmentation ONNX, as the runtimes need them."""

    input_name: str
    output_name: str
    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int] | None  # (width, height) when fixed in the graph
    batch_dynamic: bool
    fixed_batch: int | None
    output_names: tuple[str, ...] = ()  # every output, logits first (the content gate's distance may follow)


def check_io(
    where: str,
    inputs: list[tuple[str, str, list[Any]]],
    outputs: list[tuple[str, str, list[Any]]],
    size_hint: tuple[int, int] | None = None,
) -> GraphIO:
    """Validate (name, type, shape) triples of a graph's inputs/outputs; ``ModelError`` names the problem.

    Types are onnxruntime strings (``tensor(float)``); symbolic dimensions are
    anything that is not an int.
    """
    if len(inputs) != 1:
        raise ModelError(f"{where}: expected one image input, found {len(inputs)}: {[i[0] for i in inputs]}")
    name, typ, shape = inputs[0]
    if typ != "tensor(float)":
        raise ModelError(f"{where}: input {name!r} must be float32, found {typ}")
    if len(shape) != 4 or shape[1] != 3:
        raise ModelError(f"{where}: input {name!r} must be N x 3 x H x W, found {shape}")
    h, w = shape[2], shape[3]
    if not (isinstance(h, int) and isinstance(w, int)):
        if size_hint is None:
            raise ModelError(f"{where}: input {name!r} has no fixed H x W ({shape}) and no input_size metadata")
        w, h = int(size_hint[0]), int(size_hint[1])
    elif size_hint is not None and (int(size_hint[0]), int(size_hint[1])) != (w, h):
        raise ModelError(f"{where}: metadata input_size {list(size_hint)} does not match the graph input {w}x{h}")
    if w < 8 or h < 8:
        raise ModelError(f"{where}: input {name!r} is too small: {w}x{h}")
    if not outputs:
        raise ModelError(f"{where}: graph has no output")
    oname, otyp, oshape = outputs[0]
    if len(oshape) != 4 or not (oshape[1] == 1 or not isinstance(oshape[1], int)):
        raise ModelError(f"{where}: output {oname!r} must be N x 1 x h x w logits, found {oshape}")
    if otyp != "tensor(float)":
        raise ModelError(f"{where}: output {oname!r} must be float32, found {otyp}")
    out_size = (oshape[3], oshape[2]) if isinstance(oshape[2], int) and isinstance(oshape[3], int) else None
    dynamic = not isinstance(shape[0], int)
    return GraphIO(
        name,
        oname,
        (int(w), int(h)),
        out_size,
        dynamic,
        None if dynamic else int(shape[0]),
        tuple(o[0] for o in outputs),
    )


_ONNX_TYPES = {
    1: "tensor(float)",
    2: "tensor(uint8)",
    3: "tensor(int8)",
    6: "tensor(int32)",
    7: "tensor(int64)",
    10: "tensor(float16)",
    11: "tensor(double)",
}


# perception.export embeds the metadata in the ONNX under this key, so the ONNX alone is enough to run it.
EMBEDDED_METADATA_KEY = "scopecast"


def sidecar_path(onnx_path: str | Path) -> Path:
    """Where perception.export writes a model's metadata: ``<model>.json`` beside the ONNX."""
    return Path(onnx_path).with_suffix(".json")


def read_sidecar(onnx_path: str | Path) -> dict[str, Any]:
    side = sidecar_path(onnx_path)
    if not side.is_file():
        return {}
    try:
        meta: dict[str, Any] = json.loads(side.read_text())
        return meta
    except (OSError, ValueError) as e:
        raise ModelError(f"model metadata {side} is not valid JSON: {e}") from None


def model_metadata(onnx_path: str | Path, embedded: str | None) -> dict[str, Any]:
    """A model's metadata: its sidecar JSON when there is one, else the JSON embedded in the ONNX, else {}.

    ``embedded`` is the text of the graph's ``scopecast`` metadata entry, read by
    whichever library opened the graph (onnx, or onnxruntime on a base install).
    An embedded entry that is not valid JSON counts as absent: the sidecar is
    the one a person edits, so only its errors are reported.
    """
    meta = read_sidecar(onnx_path)
    if meta or not embedded:
        return meta
    try:
        parsed = json.loads(embedded)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def inspect_onnx(onnx_path: str | Path) -> tuple[GraphIO, dict[str, Any]]:
    """(validated I/O, metadata) of an ONNX file without running it; ``ModelError`` if missing/corrupt."""
    path = Path(onnx_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - onnx ships with the perception extra
        raise ModelError(f"the onnx package is needed to read {path}: {e}") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ModelError(f"cannot load ONNX model {path}: {str(e).strip()[:200] or type(e).__name__}") from None
    meta = model_metadata(path, {p.key: p.value for p in model.metadata_props}.get(EMBEDDED_METADATA_KEY))
    inits = {t.name for t in model.graph.initializer}

    def triples(values: Iterable[Any]) -> list[tuple[str, str, list[Any]]]:
        out = []
        for v in values:
            if v.name in inits:
                continue
            tt = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
            out.append((v.name, _ONNX_TYPES.get(tt.elem_type, f"tensor(type {tt.elem_type})"), dims))
        return out

    if not model.graph.node:
        raise ModelError(f"cannot load ONNX model {path}: the graph is empty")
    size = meta.get("input_size")
    io = check_io(
        path.name,
        triples(model.graph.input),
        triples(model.graph.output),
        (int(size[0]), int(size[1])) if size else None,
    )
    return io, meta


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_batch(batch: np.ndarray, input_size: tuple[int, int], where: str) -> np.ndarray:
    """The batch as a contiguous float32 N x 3 x H x W array, or ``ModelError`` naming the mismatch."""
    if not isinstance(batch, np.ndarray):
        raise ModelError(f"{where}: batch must be a numpy array, got {type(batch).__name__}")
    w, h = input_size
    if batch.ndim != 4 or batch.shape[1:] != (3, h, w) or batch.shape[0] < 1:
        raise ModelError(f"{where}: batch must be N x 3 x {h} x {w}, got {tuple(batch.shape)}")
    if batch.dtype != np.float32:
        raise ModelError(f"{where}: batch must be float32, got {batch.dtype}")
    return np.ascontiguousarray(batch)


def check_logits(out: np.ndarray, n: int, where: str) -> np.ndarray:
    """N x 1 x h x w (or N x h x w) -> N x h x w float32, or ``ModelError``."""
    out = np.asarray(out)
    if out.ndim == 4 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim != 3 or out.shape[0] != n:
        raise ModelError(f"{where}: unexpected output shape {tuple(out.shape)} for a batch of {n}")
    return out.astype(np.float32, copy=False)
