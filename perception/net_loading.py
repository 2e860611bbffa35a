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
