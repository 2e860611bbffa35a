"""Helpers for runtime tests: a small randomly initialised LiteUNet exported with perception.export."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np

TINY_ARCH = {"arch": "liteunet", "enc": [8, 8, 16, 16, 24], "dec": [16, 8, 8, 8], "expand": 2, "depth": [1, 1, 1, 1]}


def make_liteunet_onnx(path: Path, *, size: int = 64, seed: int = 0, arch: dict | None = None) -> Path:
    """Export a random tiny LiteUNet (BatchNorm statistics randomised too) as ``path`` + sidecar JSON."""
    import torch
    from torch import nn

    from perception.export import export_onnx
    from perception.nets import build_net

    arch = dict(arch or TINY_ARCH)
    torch.manual_seed(seed)
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in arch.items() if k != "arch"}
    net = build_net(arch["arch"], **kw)
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    net.head.bias.data.fill_(0.0)
    net.eval()
    with torch.no_grad():  # scale the head so logits spread over about +-4 (masks are then stable)
        probe = torch.randn(2, 3, size, size, generator=g)
        y = net(probe)
        k = 4.0 / max(float(y.std()), 1e-6)
        net.head.weight.mul_(k)
        net.head.bias.fill_(-float(y.mean()) * k)
    export_onnx(net, path, (size, size))
    meta = {
        "name": path.stem,
        "version": "0.1",
        "labels": ["thing"],
        "input_size": [size, size],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "threshold": 0.5,
        "min_area_frac": 0.001,
        "arch": arch,
        "input_name": "image",
        "output_name": "logits",
    }
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def structured_frames(n: int, w: int, h: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random RGB frames with a few bright blobs (so masks are not empty)."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = rng.integers(0, 255, (max(8, h // 8), max(8, w // 8), 3), dtype=np.uint8)
        f = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
        for _ in range(3):
            cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.circle(f, (cx, cy), int(min(w, h) * rng.uniform(0.05, 0.2)), (255, 40, 40), -1)
        out.append(f)
    return out


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports
