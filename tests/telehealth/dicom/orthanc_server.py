"""A throwaway Orthanc with its DICOMweb plugin on a free loopback port, for the DICOM tests (the Debian packages
orthanc and orthanc-dicomweb, which scripts/install.sh installs). The tests skip, saying so, without them."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_orthanc() -> None:
    if not ORTHANC.is_file():
        pytest.skip(f"Orthanc is not installed ({ORTHANC}): apt-get install orthanc orthanc-dicomweb")
    if not DICOMWEB_PLUGIN.exists():
        pytest.skip(f"Orthanc's DICOMweb plugin is not installed ({DICOMWEB_PLUGIN}): apt-get install orthanc-dicomweb")


@contextmanager
def orthanc(folder: Path) -> Iterator[str]:
    """Start Orthanc with its storage under `folder`; yields its DICOMweb base URL (http://127.0.0.1:PORT/dicom-web)."""
    require_orthanc()
    folder.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    config = {
        "Name": "scopecast-test",
        "HttpPort": http_port,
        "DicomPort": free_port(),
        # Orthanc 1.10 cannot bind its DICOM listener to loopback only, and the tests speak DICOMweb: keep it off.
        "DicomServerEnabled": False,
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "RemoteAccessAllowed": False,  # loopback clients only
        "AuthenticationEnabled": False,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("wb")
    proc = subprocess.Popen([str(ORTHANC), str(path)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"Orthanc exited ({proc.returncode}): {(folder / 'orthanc.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{base}/system", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Orthanc did not answer /system within 30 s")
            time.sleep(0.1)
        yield f"{base}/dicom-web"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
