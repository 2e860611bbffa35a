"""Serve an ONNX through a real Triton server (nvidia-pytriton) on loopback, for the triton runtime tests.

    python triton_server_proc.py MODEL.onnx NAME GRPC_PORT HTTP_PORT METRICS_PORT MAX_BATCH

The bundled server has only the Python backend, so the bound inference
function runs the ONNX with onnxruntime (CPU, one thread). Prints "READY" once
the model is served, then serves until stdin is closed. Start it with
LD_LIBRARY_PATH set to this interpreter's LIBDIR (see tests/perception/runtimes).
"""

from __future__ import annotations

import sys

import numpy as np


def main(argv: list[str]) -> int:
    onnx_path, name, grpc_port, http_port, metrics_port, max_batch = argv
    import onnxruntime as ort
    from pytriton.decorators import batch
    from pytriton.model_config import ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, sess_options=opts, providers=["CPUExecutionProvider"])
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    _, c, h, w = inp.shape
    oh, ow = out.shape[2], out.shape[3]
    if not isinstance(oh, int):
        oh, ow = h, w

    @batch
    def infer(**inputs):
        x = np.ascontiguousarray(inputs[inp.name], dtype=np.float32)
        return {out.name: sess.run([out.name], {inp.name: x})[0]}

    config = TritonConfig(
        grpc_address="127.0.0.1",
        grpc_port=int(grpc_port),
        http_address="127.0.0.1",
        http_port=int(http_port),
        metrics_address="127.0.0.1",
        metrics_port=int(metrics_port),
        allow_metrics=False,
        exit_timeout_secs=2,
    )
    with Triton(config=config) as triton:
        triton.bind(
            model_name=name,
            infer_func=infer,
            inputs=[Tensor(name=inp.name, dtype=np.float32, shape=(int(c), int(h), int(w)))],
            outputs=[Tensor(name=out.name, dtype=np.float32, shape=(1, int(oh), int(ow)))],
            config=ModelConfig(max_batch_size=int(max_batch)),
            strict=True,
        )
        triton.run()
        print("READY", flush=True)
        sys.stdin.read()  # serve until the test closes our stdin
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
