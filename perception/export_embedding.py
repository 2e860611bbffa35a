"""Add the retrieval embedding to an exported segmentation ONNX, in place, without touching its weights.

    python -m perception.export_embedding perception/weights/wound.onnx perception/weights/polyp.onnx

The ``embedding`` output (N x C float32, unit length) is an encoder feature map averaged over space and
L2-normalised, as two nodes appended to the graph: ``ReduceMean`` -> ``LpNormalization``. By default the map is
the last one at 1/16 of the input (112 channels for EfficientNet-Lite0). No weight changes, so the logits and the
content gate's distance are bit-identical before and after (checked here on random and, with ``--check-images``,
real frames) and the model's ``version`` stays; the embedding has its own version (``EMBEDDING_VERSION``) that
the embedder appends to it.

Why 1/16: the deepest (1/32) map is the one most tuned to "polyp or background" and keeps little of what tells one
polyp from another (recall@5 0.79 against 0.97 for the 1/16 map on CVC-ClinicDB's held-out sequences). The content
gate's vector (mean and std of the 1/2-1/8 maps) scores about as well as the 1/16 map there, but it measures colour
and texture statistics, the camera and the light, which one video shares whatever it shows; the 1/16 features
describe content (docs/model-cards/polyp-accurate.md has the comparison, on the v2 weights).

The map is found by how the decoder uses it (``find_feature``), unless ``--tensor`` names one. ``perception.export``
calls ``with_embedding`` on every new export. Needs the ``onnx`` package (training extra); the embedder itself
needs only onnxruntime.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perception.runtimes.base import EMBEDDED_METADATA_KEY as _METADATA_KEY

EMBEDDING_OUTPUT = "embedding"
# Bump when the recipe below changes (pooling, tensor, a projection): vectors of different versions do not compare.
EMBEDDING_VERSION = "emb1"
_NODE_PREFIX = "/embedding/"
FEATURE_LEVELS = ("1/16", "1/32")
# 1/16 and not the deepest 1/32 map: on CVC-ClinicDB's held-out sequences the 1/32 map finds another frame of the
# same polyp in the top 5 for 0.79 of the frames, the 1/16 map for 0.97 (docs/model-cards/polyp-accurate.md has the table).
DEFAULT_LEVEL = "1/16"


class EmbeddingExportError(ValueError):
    """The graph has no tensor to pool, or the new output changed the existing ones."""


def find_feature(model: Any, level: str = "1/16") -> str:
    """Name of an encoder feature map of an exported U-Net, found by how the decoder uses it.

    ``1/32``: the deepest map, the first input of the decoder's first ``Resize``; ``1/16``: the skip that the first
    ``Concat`` joins to that upsampled map. Nodes are stored in topological order, so "first" is well defined.
    """
    if level not in FEATURE_LEVELS:
        raise EmbeddingExportError(f"unknown feature level {level!r} (use {' or '.join(FEATURE_LEVELS)})")
    nodes = [n for n in model.graph.node if not n.name.startswith(_NODE_PREFIX)]
    resize = next((n for n in nodes if n.op_type == "Resize"), None)
    if resize is None:
        raise EmbeddingExportError("no Resize node in the graph: name the feature map to pool with --tensor")
    if level == "1/32":
        return str(resize.input[0])
    up = resize.output[0]
    for n in nodes:
        if n.op_type == "Concat" and up in n.input:
            others = [i for i in n.input if i != up]
            if len(others) == 1:
                return str(others[0])
    raise EmbeddingExportError("no skip Concat after the first Resize: name the feature map to pool with --tensor")


def add_embedding(model: Any, tensor: str) -> Any:
    """``model`` with an ``embedding`` output = L2-normalised spatial mean of ``tensor`` (N x C x h x w).

    Idempotent: an existing embedding (nodes and output) is replaced, so re-running the tool is safe.
    """
    import onnx
    from onnx import helper

    graph = model.graph
    produced = {o for n in graph.node for o in n.output} | {i.name for i in graph.input}
    if tensor not in produced:
        raise EmbeddingExportError(f"no node produces {tensor!r} and no graph input has that name")
    keep = [n for n in graph.node if not n.name.startswith(_NODE_PREFIX)]
    del graph.node[:]
    graph.node.extend(keep)
    outs = [o for o in graph.output if o.name != EMBEDDING_OUTPUT]
    del graph.output[:]
    graph.output.extend(outs)
    pooled = _NODE_PREFIX + "pooled"
    # opset 17: ReduceMean takes its axes as an attribute (an input from opset 18)
    graph.node.append(
        helper.make_node("ReduceMean", [tensor], [pooled], name=_NODE_PREFIX + "ReduceMean", axes=[2, 3], keepdims=0)
    )
    graph.node.append(
        helper.make_node("LpNormalization", [pooled], [EMBEDDING_OUTPUT], name=_NODE_PREFIX + "L2", axis=1, p=2)
    )
    channels = _channels(model, tensor)
    graph.output.append(helper.make_tensor_value_info(EMBEDDING_OUTPUT, onnx.TensorProto.FLOAT, ["batch", channels]))
    return model


def _channels(model: Any, tensor: str) -> int:
    """Channel count of ``tensor``: from shape inference, else from the weight of the Conv that makes it."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    for v in [*inferred.graph.value_info, *inferred.graph.input]:
        if v.name == tensor:
            dims = v.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[1].HasField("dim_value"):
                return int(dims[1].dim_value)
    inits = {t.name: t for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    seen = tensor
    while seen in producer:  # through residual Adds and activations to the Conv that sets the channels
        n = producer[seen]
        if n.op_type == "Conv" and n.input[1] in inits:
            return int(inits[n.input[1]].dims[0])
        seen = n.input[0]
    raise EmbeddingExportError(f"cannot tell the channel count of {tensor!r}")


def embedding_metadata(tensor: str, dim: int, level: str | None = DEFAULT_LEVEL) -> dict[str, Any]:
    """The ``embedding`` entry of a model's metadata (sidecar JSON and the ONNX's embedded copy)."""
    return {
        "output": EMBEDDING_OUTPUT,
        "version": EMBEDDING_VERSION,
        "dim": dim,
        "tensor": tensor,
        "method": f"spatial mean of the encoder's {'last ' + level if level else 'named'} feature map, "
        "L2-normalised in the graph; no projection, no training",
        "similarity": "inner product (= cosine)",
    }


def _session(model_bytes: bytes) -> Any:
    import onnxruntime as ort

    from perception.runtimes.onnxrt import session_options

    return ort.InferenceSession(model_bytes, sess_options=session_options(1), providers=["CPUExecutionProvider"])


def check_unchanged(before: bytes, after: bytes, batch: np.ndarray) -> None:
    """Raise unless every output of ``before`` is bit-identical in ``after`` on ``batch``.

    Both run with the options the runtime uses (full graph optimisation): a new consumer of a tensor can change which
    fusions onnxruntime applies, so this is checked, not assumed.
    """
    old, new = _session(before), _session(after)
    names = [o.name for o in old.get_outputs() if o.name != EMBEDDING_OUTPUT]  # a re-run replaces an older embedding
    feed = {old.get_inputs()[0].name: np.ascontiguousarray(batch, np.float32)}
    for name, a, b in zip(names, old.run(names, feed), new.run(names, feed)):
        if a.shape != b.shape or not np.array_equal(a, b):
            raise EmbeddingExportError(f"output {name!r} changed: max |diff| {float(np.max(np.abs(a - b))):.3g}")


def probe_batch(
    input_size: tuple[int, int], mean: Sequence[float], std: Sequence[float], images: Sequence[Path]
) -> np.ndarray:
    """Normalised N x 3 x H x W batch: three random frames plus up to eight of ``images``, preprocessed exactly as
    the segmentation model does."""
    import cv2

    from perception.segmentation_model import preprocess_frame

    w, h = input_size
    std_ = np.asarray(std, np.float32)
    scale, offset = (1.0 / (255.0 * std_)).astype(np.float32), (-np.asarray(mean, np.float32) / std_).astype(np.float32)
    rng = np.random.default_rng(0)
    frames: list[np.ndarray] = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(3)]
    for p in list(images)[:8]:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is not None:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return np.ascontiguousarray(np.stack([preprocess_frame(f, (w, h), scale, offset) for f in frames]))


def _update_embedded_metadata(model: Any, entry: dict[str, Any]) -> None:
    for prop in model.metadata_props:
        if prop.key == _METADATA_KEY:
            meta = json.loads(prop.value)
            meta["embedding"] = entry
            prop.value = json.dumps(meta, sort_keys=True)
            return
    prop = model.metadata_props.add()
    prop.key, prop.value = _METADATA_KEY, json.dumps({"embedding": entry}, sort_keys=True)


def with_embedding(before: bytes, probe: np.ndarray, *, tensor: str | None = None) -> tuple[bytes, dict[str, Any]]:
    """(the serialised ONNX ``before`` with the embedding added, its ``embedding`` metadata entry).

    The entry is also written into the graph's embedded ``scopecast`` metadata; ``EmbeddingExportError`` when no
    feature map is found or an existing output differs on ``probe`` (a normalised N x 3 x H x W batch).
    """
    import onnx

    model = onnx.load_from_string(before)
    name = tensor or find_feature(model, DEFAULT_LEVEL)
    add_embedding(model, name)
    entry = embedding_metadata(name, _channels(model, name), None if tensor else DEFAULT_LEVEL)
    _update_embedded_metadata(model, entry)
    onnx.checker.check_model(model)
    after: bytes = model.SerializeToString()
    check_unchanged(before, after, probe)
    return after, entry


def export_embedding(
    onnx_path: str | Path, *, tensor: str | None = None, check_images: Sequence[Path] = ()
) -> dict[str, Any]:
    """Add the embedding to ``onnx_path`` in place, check the other outputs are unchanged, update the sidecar JSON
    (``embedding``, ``onnx_bytes``, ``sha256``); returns the ``embedding`` entry written."""
    path = Path(onnx_path)
    side = path.with_suffix(".json")
    meta: dict[str, Any] = json.loads(side.read_text()) if side.is_file() else {}
    size = meta.get("input_size", [256, 256])
    probe = probe_batch(
        (int(size[0]), int(size[1])), meta.get("mean", (0.5, 0.5, 0.5)), meta.get("std", (0.5, 0.5, 0.5)), check_images
    )
    after, entry = with_embedding(path.read_bytes(), probe, tensor=tensor)
    path.write_bytes(after)
    if meta:
        meta["embedding"] = entry
        meta["onnx_bytes"] = len(after)
        meta["sha256"] = hashlib.sha256(after).hexdigest()
        side.write_text(json.dumps(meta, indent=2) + "\n")
    return entry | {"checked_frames": len(probe)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Add the retrieval embedding output to exported segmentation ONNX files.")
    p.add_argument("onnx", nargs="+", type=Path, help="perception/weights/<name>.onnx (edited in place)")
    p.add_argument("--tensor", default=None, help=f"feature map to pool (default: the encoder's last {DEFAULT_LEVEL})")
    p.add_argument(
        "--check-images", type=Path, default=None, metavar="DIR", help="also check the outputs on up to 8 images of DIR"
    )
    args = p.parse_args(argv)
    images = sorted(args.check_images.glob("*.jpg")) if args.check_images else []
    for path in args.onnx:
        if not path.is_file():
            print(f"model not found: {path}", file=sys.stderr)
            return 2
        try:
            entry = export_embedding(path, tensor=args.tensor, check_images=images)
        except EmbeddingExportError as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
        print(
            f"{path}: {entry['output']} ({entry['dim']}-d, from {entry['tensor']}); "
            f"the other outputs bit-identical on {entry['checked_frames']} frames"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
