"""The models shipped with scopecast (``perception/weights/*.onnx``), registered by name.

Shipped now:

* ``polyp`` - colonoscopy polyp segmentation (Kvasir-SEG + CVC-ClinicDB), label ``polyp``;
* ``wound`` - foot-ulcer wound segmentation (FUSeg 2021), label ``wound``.

Factories load lazily: nothing is read until ``registry.create(name)``; each
call builds a new instance (one per stream: the instance keeps tracker state).
"""

from __future__ import annotations

from pathlib import Path

from perception.registry import ModelRegistry

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def shipped_models(weights_dir: Path = WEIGHTS_DIR) -> dict[str, Path]:
    """Name -> ONNX path of every model file in ``weights_dir`` (name = file stem)."""
    if not weights_dir.is_dir():
        return {}
    return {p.stem: p for p in sorted(weights_dir.glob("*.onnx"))}


def _factory(path: Path, threads: int, device: str):
    def create():
        from perception.onnx_model import OnnxSegmentationModel

        return OnnxSegmentationModel(path, threads=threads, device=device)

    return create


def register_builtin_models(
    registry: ModelRegistry, *, threads: int = 1, device: str = "auto", weights_dir: Path = WEIGHTS_DIR
) -> None:
    """Register every shipped ONNX model under its file name (``polyp``, ``wound``)."""
    for name, path in shipped_models(weights_dir).items():
        registry.register(name, _factory(path, threads, device))
