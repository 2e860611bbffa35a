"""Whether torch can reach a CUDA device: asked by the automatic runtime choice and by the TensorRT runtime."""

from __future__ import annotations


def cuda_unavailable_reason() -> str | None:
    """None when torch sees a CUDA device, else why not (for logs)."""
    try:
        import torch
    except ImportError:
        return "torch not installed"
    try:
        if not torch.cuda.is_available():
            return "no CUDA device" if torch.version.cuda else "torch is a CPU-only build (no CUDA device usable)"
    except Exception as e:  # pragma: no cover - broken driver
        return f"CUDA unusable: {e}"
    return None
