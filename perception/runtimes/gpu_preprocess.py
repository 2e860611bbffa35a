"""Frame pre-processing on a torch device, for runtimes that take uint8 frames (TensorRT: GPU pre-processing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported when a frame is processed, not when this module is
    import torch


def torch_preprocess(
    frames: Sequence[np.ndarray],
    input_size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """uint8 RGB frames (H x W x 3, any sizes) -> normalised N x 3 x H x W torch tensor on ``device``.

    The GPU twin of ``SegmentationModel._preprocess``, same two steps: an
    integer-factor area reduction (``F.interpolate(mode="area")``), then an
    antialiased bilinear resize to the network input (plain bilinear with
    half-pixel centres when enlarging, like ``cv2.INTER_LINEAR``). Results match
    the CPU path to float rounding for integer factors and within a few grey
    levels on average otherwise (the CPU path's own two-step INTER_AREA differs
    from a single INTER_AREA by as much). Only the uint8 frame crosses to the device.
    """
    import torch
    import torch.nn.functional as F

    w, h = input_size
    dtype = dtype or torch.float32
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    out = []
    for f in frames:
        t = torch.from_numpy(np.ascontiguousarray(f)).to(device, non_blocking=True)
        x = t.permute(2, 0, 1).unsqueeze(0).float()
        fh, fw = int(f.shape[0]), int(f.shape[1])
        if (fw, fh) != (w, h):
            k = int(min(fw / w, fh / h))
            if k >= 2:
                x = F.interpolate(x, size=(fh // k, fw // k), mode="area")
            sh, sw = int(x.shape[2]), int(x.shape[3])
            if (sw, sh) != (w, h):
                shrink = sw > w or sh > h
                x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)
        out.append(x)
    x = torch.cat(out)
    x = (x / 255.0 - m) / s
    return x.to(dtype)
