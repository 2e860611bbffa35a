"""Inference runtimes behind one small interface (see ``base.Runtime``), one file per runtime.

* ``base``        - the interface, its optional capabilities, graph and metadata checks
* ``select``      - ``select_runtime``: by name, or ``auto`` (the fastest that works here)

* ``onnxrt``      - onnxruntime, CPU (default) or CUDA provider
* ``torch_rt``    - PyTorch eager / ``torch.compile``, rebuilt from the ONNX weights or a checkpoint
* ``tensorrt_rt`` - TensorRT engine (FP16, cached on disk), GPU pre-processing
* ``triton_rt``   - a remote Triton Inference Server over gRPC
* ``triton_repo`` - writes a Triton model repository for an exported ONNX
* ``gpu_telemetry`` - NVML utilisation / memory / temperature, empty without a GPU
* ``gpu_preprocess`` - resize + normalise uint8 frames on a torch device
* ``cuda``        - whether torch reaches a CUDA device (and why not)

Benchmarks live in ``perception.bench.runtimes``.

Heavy optional packages (tensorrt, tritonclient, pynvml) are imported only
inside their own module, when that runtime is built.
"""

from perception.runtimes.base import Runtime, RuntimeUnavailable, inspect_onnx
from perception.runtimes.select import AUTO_ORDER, KINDS, select_runtime

__all__ = ["AUTO_ORDER", "KINDS", "Runtime", "RuntimeUnavailable", "inspect_onnx", "select_runtime"]
