"""Run by test_dicom_pacs.py as a separate process: a case's photo is stored, analysed and queued for a PACS that
never answers, and the first attempt hangs there until the test SIGKILLs this process."""

from __future__ import annotations

import sys
from pathlib import Path

from dicom_world import clinic, open_case


def main(data_dir: str, url: str) -> None:
    services = clinic(Path(data_dir), url, timeout_s=120)
    world = open_case(services)
    world.photo()  # analysed, so its instances are queued (the analysis worker's hook)
    print(f"queued case {world.case_id}", flush=True)
    services.dicom.drain()  # blocks on the silent PACS until killed
    print("drain returned: the test expected to kill this process first", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
