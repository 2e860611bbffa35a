"""A loopback-only Janus: generated configuration files and the process that runs them (tests, benchmarks, a
single-box install).

The generated configuration binds the Janus API and the admin API to one address (127.0.0.1 unless told otherwise),
turns on token authentication, loads only the VideoRoom plugin and the WebSocket transport, and gathers ICE
candidates on the loopback interface only. The admin API adds and removes tokens: it must never be reachable from
outside the machine that runs scopecast.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
_KEEP_PLUGINS = ("libjanus_videoroom.so",)
_KEEP_TRANSPORTS = ("libjanus_websockets.so",)


class JanusNotInstalled(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalJanusConfig:
    """What a generated configuration says: where Janus listens and the secrets scopecast needs to drive it."""

    config_dir: Path
    log_file: Path
    ws_port: int
    admin_port: int
    admin_secret: str
    room_admin_key: str  # the VideoRoom's admin_key: only who holds it creates rooms (scopecast), not every viewer
    listen_ip: str = "127.0.0.1"
    rtp_ports: tuple[int, int] = (40000, 40999)

    @property
    def ws_url(self) -> str:
        return f"ws://{self.listen_ip}:{self.ws_port}"

    @property
    def admin_url(self) -> str:
        return f"ws://{self.listen_ip}:{self.admin_port}"


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _disabled(folder: Path, keep: tuple[str, ...]) -> str:
    names = sorted(p.name for p in folder.glob("*.so") if p.name not in keep) if folder.is_dir() else []
    return ",".join(names)


def write_config(
    config_dir: Path,
    *,
    listen_ip: str = "127.0.0.1",
    ice_interface: str = "lo",
    ws_port: int | None = None,
    admin_port: int | None = None,
    admin_secret: str | None = None,
    rtp_ports: tuple[int, int] | None = None,
    lib_dir: Path = JANUS_LIB,
) -> LocalJanusConfig:
    """Write janus.jcfg, the VideoRoom and the WebSocket transport configuration into `config_dir`. Without
    `rtp_ports`, a random range of 400 ports: Janus instances of parallel tests do not share one."""
    if listen_ip in ("0.0.0.0", "::", ""):
        raise ValueError(
            f"Janus must listen on loopback or one interface's address, not on every interface ({listen_ip!r}): "
            "its admin API adds tokens for anyone who reaches it"
        )
    config_dir.mkdir(parents=True, exist_ok=True)
    if rtp_ports is None:
        base = 20000 + 400 * secrets.randbelow(100)
        rtp_ports = (base, base + 399)
    config = LocalJanusConfig(
        config_dir=config_dir,
        log_file=config_dir / "janus.log",
        ws_port=ws_port or free_tcp_port(listen_ip),
        admin_port=admin_port or free_tcp_port(listen_ip),
        admin_secret=admin_secret or secrets.token_urlsafe(24),
        room_admin_key=secrets.token_urlsafe(24),
        listen_ip=listen_ip,
        rtp_ports=rtp_ports,
    )
    core = f"""general: {{
\tconfigs_folder = "{config_dir}"
\tplugins_folder = "{lib_dir / "plugins"}"
\ttransports_folder = "{lib_dir / "transports"}"
\tevents_folder = "{lib_dir / "events"}"
\tloggers_folder = "{lib_dir / "loggers"}"
\tdebug_level = 4
\tadmin_secret = "{config.admin_secret}"
\ttoken_auth = true
\tsession_timeout = 60
\tserver_name = "scopecast-janus"
\thide_dependencies = true
}}
media: {{
\trtp_port_range = "{rtp_ports[0]}-{rtp_ports[1]}"
}}
nat: {{
\tice_enforce_list = "{ice_interface}"
}}
plugins: {{
\tdisable = "{_disabled(lib_dir / "plugins", _KEEP_PLUGINS)}"
}}
transports: {{
\tdisable = "{_disabled(lib_dir / "transports", _KEEP_TRANSPORTS)}"
}}
loggers: {{
\tdisable = "{_disabled(lib_dir / "loggers", ())}"
}}
events: {{
\tbroadcast = false
\tdisable = "{_disabled(lib_dir / "events", ())}"
}}
"""
    # No rooms in the file: scopecast creates one per stream, with its own secret.
    videoroom = f'general: {{\n\tadmin_key = "{config.room_admin_key}"\n}}\n'
    websockets = f"""general: {{
\tjson = "compact"
\tws = true
\tws_port = {config.ws_port}
\tws_ip = "{listen_ip}"
\twss = false
}}
admin: {{
\tadmin_ws = true
\tadmin_ws_port = {config.admin_port}
\tadmin_ws_ip = "{listen_ip}"
\tadmin_wss = false
}}
"""
    for name, text in (
        ("janus.jcfg", core),
        ("janus.plugin.videoroom.jcfg", videoroom),
        ("janus.transport.websockets.jcfg", websockets),
    ):
        _write_private(config_dir / name, text)  # the admin secret and the room admin key are in them
    return config


def _write_private(path: Path, text: str) -> None:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(text)
    path.chmod(0o600)


def scopecast_env(config: LocalJanusConfig) -> str:
    """The SCOPECAST_JANUS_* lines that point scopecast at this Janus (an environment file's content)."""
    return (
        f"SCOPECAST_JANUS_URL={config.ws_url}\n"
        f"SCOPECAST_JANUS_ADMIN_URL={config.admin_url}\n"
        f"SCOPECAST_JANUS_ADMIN_SECRET={config.admin_secret}\n"
        f"SCOPECAST_JANUS_ROOM_ADMIN_KEY={config.room_admin_key}\n"
    )


def janus_binary() -> str | None:
    return shutil.which("janus")


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


class LocalJanus:
    """One Janus process on a generated configuration; `stop()` and `start()` again restart it on the same ports."""

    def __init__(self, config: LocalJanusConfig) -> None:
        binary = janus_binary()
        if binary is None:
            raise JanusNotInstalled("janus is not installed (apt-get install -y janus); scripts/install.sh installs it")
        self._binary = binary
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> None:
        """Raises RuntimeError (with the log's tail) when Janus does not come up."""
        self.proc = start_janus(self._binary, self.config)
        wait_until_listening(self.proc, self.config, timeout_s)

    def stop(self) -> None:
        if self.proc is not None:
            stop_janus(self.proc)
            self.proc = None


@contextmanager
def local_janus(config: LocalJanusConfig, start_timeout_s: float = 15.0) -> Iterator[LocalJanus]:
    """Run Janus in the foreground on `config` until the block ends; raises JanusNotInstalled without the binary."""
    janus = LocalJanus(config)
    janus.start(start_timeout_s)
    try:
        yield janus
    finally:
        janus.stop()


def start_janus(binary: str, config: LocalJanusConfig) -> subprocess.Popen[bytes]:
    # -o: no colour codes in the log; -N: the log file only. Janus 1.1.2 sometimes crashes while stopping with
    # sessions still open: the shell's `ulimit -c 0` keeps a 100 MB core file out of the cwd (a preexec_fn would do
    # the same but can deadlock a process that runs threads, as servers and tests do).
    args = ["-F", str(config.config_dir), "-C", str(config.config_dir / "janus.jcfg"), "-o", "-N"]
    args += ["-L", str(config.log_file)]
    return subprocess.Popen(
        ["sh", "-c", 'ulimit -c 0 && exec "$0" "$@"', binary, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def wait_until_listening(proc: subprocess.Popen[bytes], config: LocalJanusConfig, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"janus exited with {proc.returncode}: {log_tail(config)}")
        if _listening(config.listen_ip, config.ws_port) and _listening(config.listen_ip, config.admin_port):
            return
        time.sleep(0.1)
    stop_janus(proc)
    raise RuntimeError(f"janus did not listen on {config.ws_url} within {timeout_s:g} s: {log_tail(config)}")


def stop_janus(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def log_tail(config: LocalJanusConfig, chars: int = 3000) -> str:
    return config.log_file.read_text(errors="replace")[-chars:] if config.log_file.exists() else "(no log)"
