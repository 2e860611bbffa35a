"""Export a training checkpoint to ONNX, check parity with torch, write metadata.

    python -m perception.export --checkpoint runs/polyp/best.pt --name polyp

Writes ``perception/weights/<name>.onnx`` (opset 17, dynamic batch axis, fixed
H x W, input ``image`` N x 3 x H x W float32 normalised RGB, output ``logits``
N x 1 x H x W; beside it the content gate's ``domain_distance`` and the retrieval ``embedding``, see
``perception.export_embedding``) and ``perception/weights/<name>.json`` (name, version, labels,
input size, normalisation, threshold, parameters, size, checksum, parity, and
the validation metrics measured on the exported ONNX by ``perception.evaluate``
when the data is present). The same metadata is embedded in the ONNX under the
``scopecast`` metadata key, so the ONNX alone is enough to run it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perception.net_loading import CheckpointError, load_checkpoint_net, load_exported_net
from perception.runtimes.base import EMBEDDED_METADATA_KEY, file_sha256

if TYPE_CHECKING:  # torch is the training extra: imported when a model is exported
    from torch import nn

    from perception.content_gate import GateFit
    from perception.datasets import Sample
    from perception.nets import EmbeddingNet, FlipAveraged, GatedNet

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

TASK_INFO = {
    "polyp": {
        "labels": ["polyp"],
        "data": ["Kvasir-SEG (Jha et al., MMM 2020)", "CVC-ClinicDB sequences 1-23 (Bernal et al., CMIG 2015)"],
        "domain": "colonoscopy / endoscopy",
        "content": "colonoscopy",
    },
    "wound": {
        "labels": ["wound"],
        "data": ["FUSeg 2021 train (Wang et al., Sci Rep 2020)"],
        "domain": "foot ulcer photographs",
        "content": "a wound photo",
    },
}


def export_onnx(net: nn.Module, path: Path, input_size: tuple[int, int], *, opset: int = 17) -> None:
    """torch -> ONNX with a dynamic batch axis (TorchScript exporter: no onnxscript needed).

    A net with a content gate (``GatedNet``) gets a second output, ``domain_distance``.
    """
    import torch

    from perception.content_gate import GATE_OUTPUT

    w, h = input_size
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, h, w)
    outputs = ["logits"] + ([GATE_OUTPUT] if getattr(net, "gated", False) else [])
    with torch.no_grad():
        torch.onnx.export(
            net,
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["image"],
            output_names=outputs,
            dynamic_axes={"image": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
            do_constant_folding=True,
        )


def parity(net: nn.Module, onnx_path: Path, inputs: np.ndarray) -> float:
    """Max |torch - onnxruntime| over the logits of ``inputs`` (N x 3 x H x W float32), relative for the gate."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: inputs})
    with torch.no_grad():
        ref = net(torch.from_numpy(inputs))
    ref = [r.numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
    diff = float(np.max(np.abs(got[0] - ref[0])))
    for g, r in zip(got[1:], ref[1:]):  # distances are in the hundreds: compare relative to their size
        diff = max(diff, float(np.max(np.abs(g - r) / np.maximum(1.0, np.abs(r)))))
    return diff


def flip_averaged(net: nn.Module, flips: tuple[str, ...]) -> FlipAveraged:
    """``net`` run on the image and its mirrors, logits averaged (see ``perception.nets.FlipAveraged``)."""
    from perception.nets import FlipAveraged

    return FlipAveraged(net, flips).eval()


TTA_DESCRIPTIONS = {"h": "horizontal flip", "v": "vertical flip"}


def gated_net(net: EmbeddingNet, fit: GateFit) -> GatedNet:
    """``net`` with the content gate folded in (see ``perception.nets.GatedNet``)."""
    from perception.nets import GatedNet

    return GatedNet(net, fit).eval()


def embeddings(
    net: EmbeddingNet,
    samples: Sequence[Sample],
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    batch: int = 16,
) -> np.ndarray:
    """The gate's feature vector for each sample (resized like the runtime does)."""
    import torch

    from perception import datasets
    from perception.training import normalise_batch

    out = []
    for i in range(0, len(samples), batch):
        imgs, _ = datasets.load_resized(samples[i : i + batch], size)
        with torch.no_grad():
            out.append(net.forward_with_embedding(torch.from_numpy(normalise_batch(imgs, mean, std)))[1].numpy())
    return np.concatenate(out) if out else np.zeros((0, net.embedding_dim), np.float32)


# The calibration images were seen by the fine-tuned encoder, so new in-domain images can score higher than they do:
# for the polyp model the validation split's 99th percentile is 1.15 x the calibration threshold. The factor was
# chosen after looking at the validation and foreign distances (docs/content-gate.md says so and shows the margins).
GATE_MARGIN = 1.25


def gate_split(task: str, *, split_seed: int) -> tuple[list[Sample], list[Sample]]:
    """The training split in two by a hash of the file name: 80 % to fit the gate's Gaussian, 20 % for its threshold."""
    from perception import datasets

    train, _ = datasets.task_split(task, seed=split_seed)
    held_out = [datasets.is_val_name(f"gate:{s.source}/{s.name}", val_fraction=0.2) for s in train]
    return [s for s, h in zip(train, held_out) if not h], [s for s, h in zip(train, held_out) if h]


def fit_content_gate(
    net: EmbeddingNet,
    task: str,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    split_seed: int,
    percentile: float = 99.5,
    margin: float = GATE_MARGIN,
) -> GateFit:
    """Fit the gate on 80% of the training images; threshold from the other 20% (the validation split is left
    untouched, so its in-domain fraction is an honest figure)."""
    from perception.content_gate import fit_gate

    fit_part, calib_part = gate_split(task, split_seed=split_seed)
    return fit_gate(
        embeddings(net, fit_part, size, mean, std),
        embeddings(net, calib_part, size, mean, std),
        percentile=percentile,
        margin=margin,
    )


def embed_metadata(onnx_path: Path, meta: dict[str, Any]) -> None:
    """Write ``meta`` into the graph under the ``scopecast`` key (replacing what was there), after a model check."""
    import onnx

    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = EMBEDDED_METADATA_KEY, json.dumps(meta, sort_keys=True)
    model.producer_name = "scopecast"
    onnx.save(model, str(onnx_path))


VAL_METRIC_KEYS = ("dice", "iou", "precision", "recall", "ap50", "n_images", "in_domain_fraction")


def validation_metrics(onnx_path: Path, task: str, *, out_dir: Path, threads: int = 1) -> dict[str, Any] | None:
    """The card's figures of ``onnx_path`` on its task's validation split (overall and per source), or None (and a
    message) when the data is absent."""
    from perception.evaluate import evaluate_split

    try:
        res = evaluate_split(onnx_path, task, out_dir=out_dir, threads=threads)
    except FileNotFoundError as e:
        print(f"validation data not found, metrics not written: {e}", file=sys.stderr)
        return None
    metrics: dict[str, Any] = {k: res[k] for k in VAL_METRIC_KEYS if k in res}
    metrics["per_source"] = {
        src: {k: r[k] for k in VAL_METRIC_KEYS if k in r} for src, r in res.get("per_source", {}).items()
    }
    return metrics


def export(
    checkpoint: str | Path,
    name: str,
    *,
    out_dir: str | Path = WEIGHTS_DIR,
    version: str = "1.0",
    threshold: float = 0.5,
    min_area_frac: float = 0.001,
    opset: int = 17,
    tolerance: float = 1e-3,
    evaluate_val: bool = True,
    threads: int = 1,
    content_gate: bool = True,
    flip_tta: tuple[str, ...] = (),
    gate_margin: float = GATE_MARGIN,
    embedding: bool = True,
    input_size: int | None = None,
) -> dict[str, Any]:
    """Export ``checkpoint`` as ``<out_dir>/<name>.onnx`` + ``.json``; returns the metadata written.

    ``checkpoint``: a training checkpoint (``runs/<name>/best.pt``) or an exported float ONNX, re-exported with
    other options (its metadata then gains ``derived_from``). ``flip_tta``: mirrors ("h", "v") whose logits are
    averaged with the image's inside the graph (test-time augmentation, 1 + len(flip_tta) times the cost).

    ``input_size``: the square input the graph takes, when not the training size. The nets are fully convolutional,
    so a smaller input trades accuracy for speed without retraining; the content gate is fitted at that size and the
    validation metrics are measured there, so the card's figures are the exported graph's own.

    Raises ``RuntimeError`` when onnxruntime and torch disagree by more than ``tolerance``.
    """
    import torch

    from perception import datasets
    from perception.nets import EmbeddingNet, count_params

    torch.set_num_threads(max(1, threads))
    out_dir = Path(out_dir)
    onnx_path = out_dir / f"{name}.onnx"
    from_onnx = Path(checkpoint).suffix == ".onnx"
    net, ckpt = load_exported_net(checkpoint) if from_onnx else load_checkpoint_net(checkpoint)
    cfg = ckpt["config"]
    task = cfg["task"]
    trained_size = int(cfg["input_size"])
    size = trained_size if input_size is None else int(input_size)
    if size < 32 or size % 32:
        raise CheckpointError(f"input size {size} must be a multiple of 32 (the encoder downsamples 32 times)")
    mean, std = list(ckpt.get("mean", (0.485, 0.456, 0.406))), list(ckpt.get("std", (0.229, 0.224, 0.225)))
    info = TASK_INFO.get(task, {"labels": [task], "data": [], "domain": "", "content": task})
    gate_meta = None
    if content_gate and isinstance(net, EmbeddingNet):
        fit = fit_content_gate(
            net, task, size, mean, std, split_seed=cfg.get("split_seed", datasets.DEFAULT_SEED), margin=gate_margin
        )
        gate_meta = {
            "output": "domain_distance",
            "content": info["content"],
            "threshold": fit.threshold,
            "percentile": fit.percentile,
            "margin": gate_margin,
            "method": "squared Mahalanobis distance (Ledoit-Wolf) of the per-channel mean and std of the 1/2, 1/4 "
            "and 1/8 encoder features",
            "fit_images": fit.n_fit,
            "calibration_images": fit.n_calibration,
            "shrinkage": fit.shrinkage,
        }
        gate_input: EmbeddingNet = net
        if flip_tta:
            gate_input = flip_averaged(net, flip_tta)
        net = gated_net(gate_input, fit)
    elif flip_tta:
        net = flip_averaged(net, flip_tta)
    export_onnx(net, onnx_path, (size, size), opset=opset)

    # parity on random inputs (batch 3, exercises the dynamic axis) and on real validation frames
    rng = np.random.default_rng(0)
    probe = rng.normal(size=(3, 3, size, size)).astype(np.float32)
    diff = parity(net, onnx_path, probe)
    try:
        _, val = datasets.task_split(task, seed=cfg.get("split_seed", datasets.DEFAULT_SEED))
        from perception.training import normalise_batch

        imgs, _ = datasets.load_resized(val[:4], size)
        diff = max(diff, parity(net, onnx_path, normalise_batch(imgs, mean, std)))
    except (FileNotFoundError, ValueError):
        pass
    if diff > tolerance:
        raise RuntimeError(f"onnxruntime and torch disagree: max |diff| {diff:.2e} > {tolerance:.0e}")
    emb_meta = None
    if embedding:  # the retrieval output, appended to the graph; its check proves logits and gate unchanged
        from perception.export_embedding import EmbeddingExportError, with_embedding

        try:
            data, emb_meta = with_embedding(onnx_path.read_bytes(), probe)
        except EmbeddingExportError as e:
            print(f"no embedding output added: {e}", file=sys.stderr)
        else:
            onnx_path.write_bytes(data)

    meta: dict[str, Any] = {
        "name": name,
        "version": version,
        "task": "segmentation",
        "labels": info["labels"],
        "domain": info["domain"],
        "input_name": "image",
        "output_name": "logits",
        "input_size": [size, size],
        "layout": "NCHW",
        "color": "RGB",
        "normalisation": "(x / 255 - mean) / std",
        "mean": mean,
        "std": std,
        "output": "logits (sigmoid -> foreground probability)",
        "threshold": threshold,
        "min_area_frac": min_area_frac,
        "arch": ckpt["arch"],
        "test_time_augmentation": (
            " + ".join(TTA_DESCRIPTIONS[f] for f in flip_tta) + ", logits averaged with the image's"
            if flip_tta
            else "none"
        ),
        "params": count_params(net),
        "opset": opset,
        "training": {
            "task": task,
            "data": info["data"],
            "split_seed": cfg.get("split_seed"),
            "epochs": cfg.get("epochs"),
            "input_size": trained_size,
            "best_epoch": ckpt.get("epoch"),
            "batch_size": cfg.get("batch_size"),
            "lr": cfg.get("lr"),
            "val_at_input_size": ckpt.get("val"),
        },
        "parity_max_abs_diff": diff,
        **({"derived_from": ckpt["derived_from"]} if from_onnx else {}),
        **({"content_gate": gate_meta} if gate_meta else {}),
        **({"embedding": emb_meta} if emb_meta else {}),
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    embed_metadata(onnx_path, meta)
    meta["onnx_bytes"] = onnx_path.stat().st_size
    meta["sha256"] = file_sha256(onnx_path)
    json_path = onnx_path.with_suffix(".json")
    json_path.write_text(json.dumps(meta, indent=2) + "\n")

    if evaluate_val:
        from perception.evaluate import default_eval_dir

        # beside a checkpoint in runs/; never beside a source ONNX, which may sit inside the installed package
        eval_dir = default_eval_dir() / f"{name}-val" if from_onnx else Path(checkpoint).resolve().parent / "eval-val"
        metrics = validation_metrics(onnx_path, task, out_dir=eval_dir, threads=threads)
        if metrics is not None:
            meta["val_metrics"] = metrics
            json_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Export a checkpoint to ONNX.")
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="runs/<name>/best.pt, or an exported float .onnx to re-export (other --size or --flip-tta)",
    )
    p.add_argument("--name", required=True, help="model name: writes perception/weights/<name>.onnx/.json")
    p.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--version", default="1.0")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--min-area-frac", type=float, default=0.001)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-eval", action="store_true", help="skip the validation-split evaluation")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-content-gate", action="store_true", help="export without the content gate output")
    p.add_argument(
        "--gate-margin",
        type=float,
        default=GATE_MARGIN,
        help="content gate threshold = margin x the 99.5th percentile of held-out training images",
    )
    p.add_argument("--no-embedding", action="store_true", help="export without the retrieval embedding output")
    p.add_argument(
        "--flip-tta",
        nargs="?",
        const="h",
        default="",
        choices=("", "h", "v", "hv"),
        help="average the logits of the image and its mirrors inside the graph: h (horizontal, the default when "
        "given alone), v or hv (1 + number of mirrors times the network cost)",
    )
    p.add_argument(
        "--triton",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write a Triton model repository DIR/<name>/ (config.pbtxt + 1/model.onnx)",
    )
    p.add_argument("--triton-max-batch", type=int, default=8)
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="square input size of the exported graph (multiple of 32; default: the training size)",
    )
    args = p.parse_args(argv)
    if not args.checkpoint.is_file():
        print(f"checkpoint not found: {args.checkpoint}", file=sys.stderr)
        return 2
    from perception.encoders import EncoderWeightsError

    try:
        meta = export(
            args.checkpoint,
            args.name,
            out_dir=args.out_dir,
            version=args.version,
            threshold=args.threshold,
            min_area_frac=args.min_area_frac,
            opset=args.opset,
            evaluate_val=not args.no_eval,
            threads=args.threads,
            content_gate=not args.no_content_gate,
            flip_tta=tuple(args.flip_tta),
            gate_margin=args.gate_margin,
            embedding=not args.no_embedding,
            input_size=args.size,
        )
    except (CheckpointError, EncoderWeightsError) as e:
        print(f"export failed: {e}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {k: meta[k] for k in ("name", "params", "onnx_bytes", "parity_max_abs_diff")}
            | {"val_metrics": meta.get("val_metrics")},
            indent=1,
        )
    )
    if args.triton is not None:
        from perception.runtimes.triton_repo import write_model_repository

        model_dir = write_model_repository(
            Path(args.out_dir) / f"{args.name}.onnx", args.triton, args.name, max_batch=args.triton_max_batch
        )
        print(f"Triton model repository: {model_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
