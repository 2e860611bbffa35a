"""Perception: models that turn a video frame into findings.

This package knows nothing of streaming, overlays or web code; the other
packages depend on it, never the reverse.
"""

from perception.findings import Finding, FrameFindings, ModelInfo
from perception.model import FrameModel, ModelError
from perception.registry import ModelRegistry

__all__ = [
    "Finding",
    "FrameFindings",
    "FrameModel",
    "ModelError",
    "ModelInfo",
    "ModelRegistry",
]
