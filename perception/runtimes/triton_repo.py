"""Write a Triton Inference Server model repository for an exported segmentation ONNX.

    <repo>/<name>/config.pbtxt     onnxruntime backend, dynamic batching
    <repo>/<name>/1/model.onnx     the ONNX, copied unchanged
    <repo>/<name>/scopecast.json   the sidecar metadata (labels, normalisation...), when present

Serve it with ``tritonserver --model-repository <repo>`` and point the
``triton`` runtime at it (``model_name=<name>``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from perception.model import ModelError
from perception.runtimes.base import inspect_onnx


def model_config(
    name: str,
    input_name: str,
    output_name: str,
    input_size: tuple[int, int],
    output_size: tuple[int, int],
    max_batch: int,
    *,
    instance_kind: str = "auto",
    instances: int = 1,
    queue_delay_us: int = 2000,
    tensorrt_fp16: bool = False,
) -> str:
    """The ``config.pbtxt`` text (protobuf text format)."""
    w, h = input_size
    ow, oh = output_size
    preferred = sorted({b for b in (1, 2, 4, 8, 16, 32) if b <= max_batch} | {max_batch})
    lines = [
        f'name: "{name}"',
        'backend: "onnxruntime"',
        f"max_batch_size: {int(max_batch)}",
        "input [",
        "  {",
        f'    name: "{input_name}"',
        "    data_type: TYPE_FP32",
        f"    dims: [ 3, {h}, {w} ]",
        "  }",
        "]",
        "output [",
        "  {",
        f'    name: "{output_name}"',
        "    data_type: TYPE_FP32",
        f"    dims: [ 1, {oh}, {ow} ]",
        "  }",
        "]",
        "dynamic_batching {",
        f"  preferred_batch_size: [ {', '.join(str(b) for b in preferred)} ]",
        f"  max_queue_delay_microseconds: {int(queue_delay_us)}",
        "}",
    ]
    if instance_kind != "auto":
        kind = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}.get(instance_kind)
        if kind is None:
            raise ModelError(f"unknown instance kind {instance_kind!r} (use 'auto', 'gpu' or 'cpu')")
        lines += ["instance_group [", "  {", f"    count: {int(instances)}", f"    kind: {kind}", "  }", "]"]
    if tensorrt_fp16:
        lines += [
            "optimization {",
            "  execution_accelerators {",
            "    gpu_execution_accelerator: [",
            "      {",
            '        name: "tensorrt"',
            '        parameters { key: "precision_mode" value: "FP16" }',
            "      }",
            "    ]",
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def write_model_repository(
    onnx_path: str | Path,
    repo_dir: str | Path,
    name: str | None = None,
    max_batch: int = 8,
    *,
    version: int = 1,
    instance_kind: str = "auto",
    instances: int = 1,
    queue_delay_us: int = 2000,
    tensorrt_fp16: bool = False,
) -> Path:
    """Write ``<repo_dir>/<name>/`` for ``onnx_path``; returns the model folder.

    ``instance_kind`` "auto" lets Triton place instances (GPU when it has one);
    ``tensorrt_fp16`` asks Triton's onnxruntime backend for its TensorRT
    accelerator in FP16. The ONNX must have a dynamic batch axis when
    ``max_batch`` > 0 (Triton adds the batch dimension itself).
    """
    src = Path(onnx_path)
    io, _meta = inspect_onnx(src)
    name = name or src.stem
    if not name or "/" in name or name.startswith("."):
        raise ModelError(f"invalid Triton model name {name!r}")
    if max_batch < 1:
        raise ModelError(f"max_batch must be >= 1, got {max_batch}")
    if not io.batch_dynamic:
        raise ModelError(
            f"{src.name}: the graph has a fixed batch of {io.fixed_batch}; Triton batching needs "
            "a dynamic batch axis (re-export with perception.export)"
        )
    out_size = io.output_size or io.input_size
    model_dir = Path(repo_dir) / name
    (model_dir / str(int(version))).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, model_dir / str(int(version)) / "model.onnx")
    (model_dir / "config.pbtxt").write_text(
        model_config(
            name,
            io.input_name,
            io.output_name,
            io.input_size,
            out_size,
            int(max_batch),
            instance_kind=instance_kind,
            instances=instances,
            queue_delay_us=queue_delay_us,
            tensorrt_fp16=tensorrt_fp16,
        )
    )
    side = src.with_suffix(".json")
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except ValueError as e:
            raise ModelError(f"model metadata {side} is not valid JSON: {e}") from None
        (model_dir / "scopecast.json").write_text(json.dumps(meta, indent=2) + "\n")
    return model_dir
