"""A throwaway coturn on loopback (Debian package `coturn`), with the TURN REST API shared secret, for the tests."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TurnServer:
    url: str
    secret: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers_stun(port: int) -> bool:
    """A STUN binding request (RFC 5389 header only) gets a binding success response once coturn listens."""
    request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + secrets.token_bytes(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.sendto(request, ("127.0.0.1", port))
        try:
            reply, _ = s.recvfrom(2048)
        except OSError:
            return False
    return reply[:2] == b"\x01\x01" and reply[8:20] == request[8:20]


@contextmanager
def coturn(log_dir: Path) -> Iterator[TurnServer]:
    binary = shutil.which("turnserver")
    if binary is None:
        import pytest

        pytest.skip("coturn is not installed (apt-get install -y coturn); scripts/install.sh installs it")
    port = _free_port()
    secret = secrets.token_hex(16)
    log = log_dir / "turnserver.log"
    proc = subprocess.Popen(
        [
            binary,
            "-n",
            "--verbose",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            "--min-port=49152",
            "--max-port=49352",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            "--realm=scopecast.test",
            "--allow-loopback-peers",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--no-multicast-peers",
            "--fingerprint",
            f"--userdb={log_dir / 'turndb'}",
            f"--log-file={log}",
            "--simple-log",
            "--pidfile=" + str(log_dir / "turnserver.pid"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"turnserver exited: {log.read_text()[-2000:] if log.exists() else ''}")
            if _answers_stun(port):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"turnserver did not answer on 127.0.0.1:{port}")
        yield TurnServer(f"turn:127.0.0.1:{port}?transport=udp", secret)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
