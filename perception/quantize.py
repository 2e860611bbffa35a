"""Quantise an exported segmentation ONNX to 8-bit integers (static, QDQ), for CPUs with integer dot products.

    python -m perception.quantize --source perception/weights/polyp-accurate.onnx --name polyp --version 4.0

The network's convolutions, additions, resizes, concatenations and activations run on uint8 activations and int8
weights (per channel); scales come from images of the *training* split (never the validation split, whose figures
the card reports). onnxruntime runs such a graph with its integer kernels (VNNI on x86), about twice as fast on
this VM as the float graph at the same input size, for a small loss of Dice that the card states.

What stays float, and why:
- everything the logits do not depend on: the content gate's arithmetic (per-channel mean and std of the encoder
  features, Mahalanobis distance) and the retrieval embedding's pooling read dequantised features and compute in
  float;
- the gate itself is fitted again, by the export's own recipe (``perception.export.fit_content_gate``: a
  Ledoit-Wolf Gaussian of 80 % of the training images, threshold = ``margin`` x the ``percentile`` of the other
  20 %), on the *quantised* graph's features. Integer features move the distances: the float graph's Gaussian and
  threshold let 46 % of the polyp validation frames in, and with only its threshold re-derived, 19 % of the wound
  photos.

Writes ``<out_dir>/<name>.onnx`` and ``.json`` (the source's metadata, with ``quantization`` and ``derived_from``
added) and, when the data is present, the validation metrics measured on the quantised graph.
Needs the ``onnx`` package and onnxruntime's quantisation tools (training extra); the result runs on a base install.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception import datasets
from perception.content_gate import GATE_OUTPUT, GateFit
from perception.model import ModelError
from perception.runtimes.base import EMBEDDED_METADATA_KEY, file_sha256

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# The network's operator types; of those nodes only the ones the logits depend on are quantised (``logits_nodes``).
QUANTISED_OPS = ("Conv", "Add", "Resize", "Concat", "Clip", "Relu")
# The gate's fitted Gaussian, as ``perception.nets.GatedNet`` names its buffers in the exported graph.
GATE_MEAN, GATE_PRECISION = "gate_mean", "gate_precision"
DEFAULT_CALIBRATION_IMAGES = 64


class QuantiseError(ModelError):
    """The source graph cannot be quantised as asked (no metadata, no data to calibrate on, a tool missing)."""


@dataclass(frozen=True)
class QuantisedModel:
    """What ``quantise`` wrote, with the figures the card needs."""

    onnx_path: Path
    metadata: dict[str, Any]
    seconds: float


def read_embedded_metadata(onnx_path: Path) -> dict[str, Any]:
    """The ``scopecast`` metadata of an exported ONNX; ``QuantiseError`` when it has none."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError, OSError and more for a file that is not a graph
        raise QuantiseError(f"{onnx_path}: not a readable ONNX graph ({e})") from None
    props = {p.key: p.value for p in model.metadata_props}
    if EMBEDDED_METADATA_KEY not in props:
        raise QuantiseError(f"{onnx_path}: no '{EMBEDDED_METADATA_KEY}' metadata (export it with perception.export)")
    meta = json.loads(props[EMBEDDED_METADATA_KEY])
    if not isinstance(meta, dict) or "input_size" not in meta or "training" not in meta:
        raise QuantiseError(f"{onnx_path}: its metadata lacks input_size or training (not a scopecast export)")
    return meta


def _split_seed(meta: dict[str, Any]) -> int:
    return int(meta["training"].get("split_seed") or datasets.DEFAULT_SEED)


def calibration_batch(meta: dict[str, Any], n_images: int, *, seed: int = 0) -> np.ndarray:
    """``n_images`` normalised training-split images at the graph's input size (N x 3 x H x W float32)."""
    from perception.training import normalise_batch

    task = meta["training"]["task"]
    train, _ = datasets.task_split(task, seed=_split_seed(meta))
    if not train:
        raise QuantiseError(f"no training images of task {task!r} under {datasets.data_root()} to calibrate on")
    rng = np.random.default_rng(seed)
    picked = [train[i] for i in rng.choice(len(train), size=min(n_images, len(train)), replace=False)]
    images, _ = datasets.load_resized(picked, int(meta["input_size"][0]))
    return normalise_batch(images, meta["mean"], meta["std"])


class _Frames:
    """onnxruntime's calibration reader protocol over a preloaded batch, one image at a time."""

    def __init__(self, input_name: str, batch: np.ndarray) -> None:
        self._input_name = input_name
        self._items: Iterator[np.ndarray] = iter(batch)

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._items, None)
        return None if item is None else {self._input_name: item[None]}


def logits_nodes(model: Any, output: str = "logits") -> set[str]:
    """Names of the nodes ``output`` depends on (an ``onnx.ModelProto``'s graph walked back from that output)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    seen: set[str] = set()
    todo = [output]
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        todo.extend(node.input)
    return seen


def quantise_graph(source: Path, out: Path, calibration: np.ndarray, *, input_name: str = "image") -> None:
    """Static QDQ quantisation of ``source`` into ``out``: int8 per-channel weights, uint8 activations (min-max).

    Only nodes the logits depend on are quantised; the rest (gate, embedding) stays float.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Frames, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # shape inference and constant folding first, as onnxruntime's quantisation guide asks
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        prepared_model = onnx.load(str(prepared))
        network = logits_nodes(prepared_model)
        if not network:
            raise QuantiseError(f"{source}: no 'logits' output to quantise")
        quantize_static(
            str(prepared),
            str(out),
            Reader(input_name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(QUANTISED_OPS),
            nodes_to_exclude=[n.name for n in prepared_model.graph.node if n.name not in network],
        )


def gate_features_tensor(model: Any) -> str:
    """The gate's feature vector in the graph: the tensor the fitted mean is subtracted from."""
    for node in model.graph.node:
        if node.op_type == "Sub" and len(node.input) == 2 and node.input[1] == GATE_MEAN:
            return str(node.input[0])
    raise QuantiseError(f"the graph has a '{GATE_OUTPUT}' output but no Sub from '{GATE_MEAN}' to refit")


def _features(session: Any, feature: str, batch: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    out = [session.run([feature], {name: batch[i : i + 8]})[0] for i in range(0, len(batch), 8)]
    return np.concatenate(out).astype(np.float64)


def refit_gate(onnx_path: Path, meta: dict[str, Any], *, threads: int = 1) -> GateFit:
    """Fit the content gate again on the quantised graph's own features and write it into the graph.

    Same images, percentile and margin as ``perception.export.fit_content_gate``: the Gaussian on 80 % of the
    training split, the threshold from the held-out 20 %.
    """
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from perception.content_gate import fit_gate
    from perception.export import gate_split
    from perception.training import normalise_batch

    gate = meta["content_gate"]
    model = onnx.load(str(onnx_path))
    feature = gate_features_tensor(model)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(feature))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    session = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    size = int(meta["input_size"][0])
    parts = []
    for samples in gate_split(meta["training"]["task"], split_seed=_split_seed(meta)):
        images, _ = datasets.load_resized(samples, size)
        parts.append(_features(session, feature, normalise_batch(images, meta["mean"], meta["std"])))
    try:
        fit = fit_gate(parts[0], parts[1], percentile=float(gate["percentile"]), margin=float(gate["margin"]))
    except ValueError as e:
        raise QuantiseError(f"cannot refit the content gate: {e}") from None
    for init in model.graph.initializer:
        if init.name in (GATE_MEAN, GATE_PRECISION):
            value = fit.mean if init.name == GATE_MEAN else fit.precision
            init.CopyFrom(numpy_helper.from_array(value.astype(np.float32), init.name))
    onnx.save(model, str(onnx_path))
    return fit


def quantise(
    source: str | Path,
    name: str,
    *,
    version: str,
    out_dir: str | Path = WEIGHTS_DIR,
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
    threads: int = 1,
    evaluate_val: bool = True,
    gate_margin: float | None = None,
) -> QuantisedModel:
    """Quantise the exported ``source`` as ``<out_dir>/<name>.onnx`` (+ ``.json``); see the module docstring."""
    from perception.export import embed_metadata, validation_metrics

    source = Path(source)
    if not source.is_file():
        raise QuantiseError(f"source model not found: {source}")
    meta = read_embedded_metadata(source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    if onnx_path.resolve() == source.resolve():
        raise QuantiseError(f"{onnx_path} is the source itself: quantise into another name")
    t0 = time.time()
    calibration = calibration_batch(meta, calibration_images)
    quantise_graph(source, onnx_path, calibration, input_name=meta["input_name"])

    # The source's validation figures and torch parity describe the float graph: this one gets its own figures.
    inherited = {k: v for k, v in meta.items() if k not in ("val_metrics", "parity_max_abs_diff")}
    new: dict[str, Any] = {
        **inherited,
        "name": name,
        "version": version,
        "quantization": {
            "method": "onnxruntime static QDQ, min-max calibration",
            "weights": "int8, per output channel",
            "activations": "uint8, per tensor",
            "operators": list(QUANTISED_OPS),
            "float": "content gate and embedding arithmetic",
            "calibration_images": f"{len(calibration)} random training-split images (seed 0)",
        },
        "derived_from": {"name": meta["name"], "version": meta["version"], "sha256": file_sha256(source)},
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    gate = meta.get("content_gate")
    if isinstance(gate, dict):
        if gate_margin is not None:
            gate = {**gate, "margin": gate_margin}
        fit = refit_gate(onnx_path, {**meta, "content_gate": gate}, threads=threads)
        new["content_gate"] = {
            **gate,
            "threshold": fit.threshold,
            "fit_images": fit.n_fit,
            "calibration_images": fit.n_calibration,
            "shrinkage": fit.shrinkage,
            "fitted_on": "the quantised graph's features",
        }
    embed_metadata(onnx_path, new)
    new["onnx_bytes"] = onnx_path.stat().st_size
    new["sha256"] = file_sha256(onnx_path)
    json_path = onnx_path.with_suffix(".json")
    json_path.write_text(json.dumps(new, indent=2) + "\n")
    if evaluate_val:
        with tempfile.TemporaryDirectory() as tmp:
            metrics = validation_metrics(onnx_path, meta["training"]["task"], out_dir=Path(tmp), threads=threads)
        if metrics is not None:
            new["val_metrics"] = metrics
            json_path.write_text(json.dumps(new, indent=2) + "\n")
    return QuantisedModel(onnx_path=onnx_path, metadata=new, seconds=time.time() - t0)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Quantise an exported segmentation ONNX to 8-bit integers.")
    p.add_argument("--source", type=Path, required=True, help="an ONNX written by perception.export")
    p.add_argument("--name", required=True, help="model name: writes <out-dir>/<name>.onnx/.json")
    p.add_argument("--version", required=True)
    p.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--calibration-images", type=int, default=DEFAULT_CALIBRATION_IMAGES)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gate-margin", type=float, default=None, help="content gate margin (default: the source model's)")
    p.add_argument("--no-eval", action="store_true", help="skip the validation-split evaluation")
    args = p.parse_args(argv)
    if args.calibration_images < 1:
        print("--calibration-images must be at least 1", file=sys.stderr)
        return 2
    try:
        done = quantise(
            args.source,
            args.name,
            version=args.version,
            out_dir=args.out_dir,
            calibration_images=args.calibration_images,
            threads=args.threads,
            evaluate_val=not args.no_eval,
            gate_margin=args.gate_margin,
        )
    except (QuantiseError, FileNotFoundError) as e:
        print(f"quantisation failed: {e}", file=sys.stderr)
        return 2
    meta = done.metadata
    summary = {k: meta.get(k) for k in ("name", "version", "onnx_bytes", "val_metrics")}
    summary["gate_threshold"] = (meta.get("content_gate") or {}).get("threshold")
    print(json.dumps(summary | {"seconds": round(done.seconds, 1)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
