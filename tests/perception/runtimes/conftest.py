"""Fixtures for the runtime tests: tiny exported LiteUNets and a real Triton server on loopback."""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")
from runtime_testutil import free_ports, make_liteunet_onnx

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    return make_liteunet_onnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx", size=64)


@pytest.fixture(scope="session")
def tiny_onnx_96(tmp_path_factory) -> Path:
    return make_liteunet_onnx(tmp_path_factory.mktemp("tiny96") / "tiny96.onnx", size=96, seed=1)


def _stub_env() -> Path:
    """A python whose numpy is < 2, for the Triton Python-backend stub bundled with nvidia-pytriton.

    The stub (pybind11, built against numpy 1.x) returns EMPTY output tensors when it
    imports numpy 2 (verified: raw_output_contents of 0 bytes). pytriton runs the stub
    in the environment of ``sys.exec_prefix`` of the process that starts Triton, so the
    server process runs from a small overlay venv: its own numpy 1.x, pytriton linked
    in, and everything else from this venv through a .pth file. Built once per machine.
    """
    import pytriton

    main_sp = Path(sysconfig.get_paths()["purelib"])
    tag = f"{sys.version_info.major}{sys.version_info.minor}-{getattr(pytriton, '__version__', 'x')}"
    env = Path(tempfile.gettempdir()) / f"scopecast-triton-stub-env-{tag}"
    py = env / "bin" / "python"
    if (env / ".ready").is_file():
        return py
    tmp = Path(tempfile.mkdtemp(prefix="scopecast-triton-stub-env-"))
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(tmp)], check=True, capture_output=True, timeout=60)
    sp = tmp / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(sp), "numpy>=1.21,<2"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"pip could not install numpy<2 for the Triton stub: {r.stderr[-400:]}")
    for name in ("pytriton", "nvidia_pytriton.libs"):
        os.symlink(main_sp / name, sp / name)
    (sp / "zz_scopecast_main.pth").write_text(str(main_sp) + "\n")
    (tmp / ".ready").write_text("ok\n")
    try:
        os.rename(tmp, env)
    except OSError:  # built concurrently by another session: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return py


class TritonProcess:
    def __init__(self, onnx_path: Path, name: str, max_batch: int, timeout_s: float = 45.0) -> None:
        py = _stub_env()
        self.grpc_port, http_port, metrics_port = free_ports(3)
        self.url = f"127.0.0.1:{self.grpc_port}"
        env = dict(os.environ)
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        # the stub links libpython3.11.so.1.0: use this interpreter's, not an older system one
        env["LD_LIBRARY_PATH"] = libdir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        self.proc = subprocess.Popen(
            [
                str(py),
                str(HERE / "triton_server_proc.py"),
                str(onnx_path),
                name,
                str(self.grpc_port),
                str(http_port),
                str(metrics_port),
                str(max_batch),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.lines: collections.deque[str] = collections.deque(maxlen=200)
        self.ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self.ready.wait(timeout_s) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("Triton did not start:\n" + "\n".join(list(self.lines)[-25:]))

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if line.strip() == "READY":
                self.ready.set()
        self.ready.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def triton_server(tiny_onnx):
    pytest.importorskip(
        "tritonclient.grpc", reason="tritonclient[grpc] is not installed (pip install 'scopecast[triton]')"
    )
    try:
        import pytriton  # noqa: F401
    except ImportError:
        pytest.skip("nvidia-pytriton (bundles the Triton server) is not installed: pip install nvidia-pytriton")
    t0 = time.monotonic()
    try:
        server = TritonProcess(tiny_onnx, "tiny", max_batch=4)
    except RuntimeError as first:  # one retry on fresh ports (a port taken meanwhile, a slow start under load)
        print(f"Triton start failed once, retrying: {str(first)[-2000:]}", file=sys.stderr)
        server = TritonProcess(tiny_onnx, "tiny", max_batch=4)
    server.startup_s = time.monotonic() - t0
    try:
        yield server
    finally:
        server.stop()
