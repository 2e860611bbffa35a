"""A throwaway Janus (Debian package `janus`) on loopback for the tests: generated configuration with token
authentication, the VideoRoom plugin, the WebSocket transport and its admin API, on free ports under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stream.janus.local_config import LocalJanus, janus_binary, log_tail, write_config


@contextmanager
def janus_server(tmp_path: Path) -> Iterator[LocalJanus]:
    """A running Janus; skips without the binary, and prints the end of Janus's log when the test fails."""
    if janus_binary() is None:
        pytest.skip("Janus is not installed (apt-get install -y janus janus-tools); scripts/install.sh installs it")
    config = write_config(tmp_path / "janus")
    janus = LocalJanus(config)
    try:
        janus.start()
        yield janus
    except BaseException:
        print(f"--- janus log ({config.log_file}) ---\n{log_tail(config, 6000)}")
        raise
    finally:
        janus.stop()
