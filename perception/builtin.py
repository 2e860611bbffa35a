"""The models shipped with scopecast (``perception/weights/*.onnx``), registered by name.

Shipped now:

* ``polyp`` - colonoscopy polyp segmentation (Kvasir-SEG + CVC-ClinicDB), label ``polyp``, 224 px: the fast
  default streams run; ``polyp-accurate`` - the same at 256 px, slower and more accurate;
* ``wound`` - foot-ulcer wound segmentation (FUSeg 2021), label ``wound``, 224 px, for live consults;
  ``wound-accurate`` - 256 px, what telehealth measures photos with.

Factories load lazily: nothing is read until ``registry.create(name)``; each
call builds a new instance (one per stream: the instance keeps tracker state),
and all instances of one name share one onnxruntime runtime (one session), so
the memory a model holds does not grow with the number of streams that ever ran it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from perception.registry import ModelRegistry

if TYPE_CHECKING:
    from perception.embedder import OnnxImageEmbedder
    from perception.runtimes.onnxrt import OnnxRuntime
    from perception.segmentation_model import SegmentationModel

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def shipped_models(weights_dir: Path = WEIGHTS_DIR) -> dict[str, Path]:
    """Name -> ONNX path of every model file in ``weights_dir`` (name = file stem)."""
    if not weights_dir.is_dir():
        return {}
    return {p.stem: p for p in sorted(weights_dir.glob("*.onnx"))}


class _SharedRuntimeFactory:
    """Builds instances of one shipped model around one lazily opened onnxruntime runtime.

    Thread-safe because streams start in parallel; the runtime's ``run`` is
    thread-safe, and each instance keeps its own tracker.
    """

    def __init__(self, path: Path, threads: int, device: str) -> None:
        self._path = path
        self._threads = threads
        self._device = device
        self._runtime: OnnxRuntime | None = None
        self._lock = threading.Lock()

    def __call__(self) -> SegmentationModel:
        # Imported on first use: registering the shipped models must not load onnxruntime.
        from perception.runtimes.onnxrt import OnnxRuntime
        from perception.segmentation_model import SegmentationModel

        with self._lock:
            if self._runtime is None:
                self._runtime = OnnxRuntime(self._path, threads=self._threads, device=self._device)
        # A batch of several streams' frames is pre- and post-processed on as many threads as the network runs on.
        return SegmentationModel(self._path, runtime=self._runtime, runtime_shared=True, batch_workers=self._threads)


def register_builtin_models(
    registry: ModelRegistry, *, threads: int = 1, device: str = "auto", weights_dir: Path = WEIGHTS_DIR
) -> None:
    """Register every shipped ONNX model under its file name (``polyp``, ``wound``)."""
    for name, path in shipped_models(weights_dir).items():
        registry.register(name, _SharedRuntimeFactory(path, threads, device))


def shipped_embedder(
    name: str, *, threads: int = 1, device: str = "auto", weights_dir: Path = WEIGHTS_DIR
) -> OnnxImageEmbedder:
    """The image embedder of a shipped model (``wound``, ``polyp``); ``ModelError`` naming the shipped ones otherwise.

    It opens its own onnxruntime session (the weights once more, 12 MB), not the streams' shared one, so that the
    background worker's thread count and lifetime are its own and closing it leaves the live streams alone.
    """
    from perception.embedder import OnnxImageEmbedder
    from perception.model import ModelError

    models = shipped_models(weights_dir)
    if name not in models:
        known = ", ".join(models) or "none"
        raise ModelError(f"no shipped model named {name!r} (shipped: {known})")
    return OnnxImageEmbedder(models[name], threads=threads, device=device)
