"""Networks rebuilt from what training and export leave behind: a training checkpoint, or an exported ONNX.

Kept apart from ``perception.export`` so that the torch runtime can rebuild a
network without importing the export tool (which evaluates, and so loads models).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perception.runtimes.base import EMBEDDED_METADATA_KEY, model_metadata

if TYPE_CHECKING:  # torch is the training extra: imported when a network is rebuilt
    from torch import nn


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the architecture it names."""


def load_checkpoint_net(checkpoint: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """(net in eval mode, checkpoint dict) from a training checkpoint (best.pt or last.pt)."""
    import torch

    from perception.nets import build_net

    try:
        ckpt = torch.load(Path(checkpoint), map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {checkpoint}: {str(e).strip()[:200]}") from None
    if not isinstance(ckpt, dict) or not {"arch", "model", "config"} <= set(ckpt):
        raise CheckpointError(f"{checkpoint} is not a scopecast training checkpoint (needs arch, model and config)")
    arch = dict(ckpt["arch"])
    kind = arch.pop("arch", None)
    try:
        net = build_net(kind, **{k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()})
        net.load_state_dict(ckpt["model"])
    except (ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(
            f"{checkpoint} does not fit architecture {kind!r}: {str(e).splitlines()[0][:200]}"
        ) from None
    net.eval()
    return net, ckpt


def net_from_onnx(onnx_path: str | Path) -> nn.Module:
    """Rebuild the torch network from an exported ONNX (for parity checks without a checkpoint).

    The exporter folds each BatchNorm into the preceding convolution, so the
    rebuilt net has biased convolutions and identity normalisation; the graph's
    Conv nodes are taken in order and must match the net's Conv2d modules
    one-to-one in shape, or ``ValueError`` is raised.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from torch import nn

    from perception.nets import build_net

    onnx_path = Path(onnx_path)
    model = onnx.load(str(onnx_path))
    meta = model_metadata(onnx_path, {p.key: p.value for p in model.metadata_props}.get(EMBEDDED_METADATA_KEY))
    arch = dict(meta["arch"])
    net = build_net(arch.pop("arch"), **{k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()})
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    # the exporter de-duplicates identical initializers (e.g. equal folded biases) behind Identity nodes
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            inits.setdefault(node.output[0], inits[node.input[0]])
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    modules = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != len(modules):
        raise ValueError(f"{onnx_path.name}: {len(convs)} Conv nodes but the net has {len(modules)} convolutions")
    for node, conv in zip(convs, modules):
        w = inits[node.input[1]]
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise ValueError(f"{onnx_path.name}: Conv {node.name} weight {w.shape} vs {tuple(conv.weight.shape)}")
        conv.weight = nn.Parameter(torch.from_numpy(w.copy()))
        b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
        conv.bias = nn.Parameter(torch.from_numpy(b.copy()))

    def strip_bn(mod: nn.Module) -> None:
        for child_name, child in mod.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(mod, child_name, nn.Identity())
            else:
                strip_bn(child)

    strip_bn(net)
    return net.eval()


def _onnx_conv_tensors(onnx_path: Path) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """The Conv nodes of an exported ONNX in graph order, as (name, weight, bias or None)."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(onnx_path))
    except Exception as e:
        raise CheckpointError(f"cannot read {onnx_path}: {str(e).strip()[:200]}") from None
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:  # de-duplicated initializers sit behind Identity nodes
        if node.op_type == "Identity" and node.input[0] in inits:
            inits.setdefault(node.output[0], inits[node.input[0]])
    convs = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        if node.input[1] not in inits:  # an int8 graph's weights come through DequantizeLinear
            raise CheckpointError(
                f"{onnx_path.name}: Conv {node.name} has no float weight tensor (a quantised graph?); "
                "fine-tune from the float model it was made from"
            )
        bias = inits.get(node.input[2]) if len(node.input) > 2 else None
        convs.append((node.name, inits[node.input[1]], bias))
    return convs


def load_onnx_weights_unfolded(net: nn.Module, onnx_path: str | Path) -> int:
    """Load an exported ONNX's weights into a freshly built `net` of the same architecture, BatchNorms kept.

    The exporter folds each BatchNorm into the convolution before it. To train on from those weights the
    network keeps its BatchNorm modules, each set to add the folded bias and otherwise pass values through
    (running mean 0, running variance 1): in eval mode the net then computes what the ONNX computes. Training
    must keep these BatchNorms in eval mode (`freeze_batchnorm`), since batch statistics would undo the fold.
    Convolutions are matched to the graph's Conv nodes in order, shapes checked; returns how many were loaded.
    """
    import torch
    from torch import nn

    onnx_path = Path(onnx_path)
    convs = _onnx_conv_tensors(onnx_path)
    ordered = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d | None]] = []
    for k, module in enumerate(ordered):
        if isinstance(module, nn.Conv2d):
            after = ordered[k + 1] if k + 1 < len(ordered) else None
            follows = isinstance(after, nn.BatchNorm2d) and after.num_features == module.out_channels
            pairs.append((module, after if follows else None))  # type: ignore[arg-type]  # narrowed just above
    if len(pairs) != len(convs):
        raise CheckpointError(
            f"{onnx_path.name}: {len(convs)} Conv nodes but the net has {len(pairs)} convolutions (another architecture?)"
        )
    with torch.no_grad():
        for (name, weight, bias), (conv, bn) in zip(convs, pairs):
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise CheckpointError(
                    f"{onnx_path.name}: Conv {name} weight {weight.shape} does not fit {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            folded = torch.from_numpy(bias.copy()) if bias is not None else torch.zeros(weight.shape[0])
            if bn is not None:
                bn.running_mean.zero_()  # type: ignore[union-attr]  # BatchNorm2d built with running stats
                bn.running_var.fill_(1.0)  # type: ignore[union-attr]
                bn.weight.fill_(float(np.sqrt(1.0 + bn.eps)))
                bn.bias.copy_(folded)
            elif conv.bias is not None:
                conv.bias.copy_(folded)
            elif bool(folded.abs().max() > 0):
                raise CheckpointError(f"{onnx_path.name}: Conv {name} has a bias the net has no place for")
    return len(pairs)


def freeze_batchnorm(net: nn.Module) -> None:
    """Put every BatchNorm in eval mode (running statistics fixed; its scale and shift still train)."""
    from torch import nn

    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()


def load_exported_net(onnx_path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """(net in eval mode, a checkpoint-shaped dict) rebuilt from an exported float ONNX and its metadata.

    Lets `scopecast export` re-export a shipped model (another size, test-time flips) when its training
    checkpoint is gone: the dict carries what a checkpoint would (arch, config, epoch, val, mean, std) as
    the export recorded them, plus ``derived_from`` naming the source graph.
    """
    import onnx

    from perception.nets import build_net
    from perception.runtimes.base import file_sha256

    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise CheckpointError(f"model file not found: {onnx_path}")
    try:
        embedded = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    except Exception as e:
        raise CheckpointError(f"cannot read {onnx_path}: {str(e).strip()[:200]}") from None
    meta = model_metadata(onnx_path, embedded.get(EMBEDDED_METADATA_KEY))
    training = meta.get("training")
    if not isinstance(meta.get("arch"), dict) or not isinstance(training, dict) or "task" not in training:
        raise CheckpointError(f"{onnx_path.name} carries no scopecast export metadata (arch and training)")
    if meta.get("quantization"):
        raise CheckpointError(
            f"{onnx_path.name} is a quantised graph; re-export the float model it was made from "
            f"({meta.get('derived_from', {}).get('name', 'its source')})"
        )
    arch = dict(meta["arch"])
    kind = arch.pop("arch", None)
    try:
        net = build_net(kind, **{k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()})
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{onnx_path.name}: cannot build architecture {kind!r}: {e}") from None
    load_onnx_weights_unfolded(net, onnx_path)
    net.eval()
    config = {
        "task": training["task"],
        "input_size": training.get("input_size", meta["arch"].get("input_size")),
        "split_seed": training.get("split_seed"),
        "epochs": training.get("epochs"),
        "batch_size": training.get("batch_size"),
        "lr": training.get("lr"),
    }
    checkpoint = {
        "arch": meta["arch"],
        "config": config,
        "epoch": training.get("best_epoch"),
        "val": training.get("val_at_input_size"),
        "mean": meta.get("mean"),
        "std": meta.get("std"),
        "derived_from": {"name": meta.get("name"), "version": meta.get("version"), "sha256": file_sha256(onnx_path)},
    }
    return net, checkpoint
