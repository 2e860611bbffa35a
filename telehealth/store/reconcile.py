"""Start-up reconciliation: make the photo files and the photo rows agree before the first request is served."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from telehealth.records import FileState
from telehealth.store.cases import CaseStore
from telehealth.store.tables import PhotoSubmissionRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileReport:
    temp_files_removed: int
    files_quarantined: int
    rows_flagged_missing: int
    rows_restored: int


def reconcile(store: CaseStore) -> ReconcileReport:
    """Remove half-written temp files, quarantine files no row references (written, then the commit never
    happened) and flag rows whose file is gone. Run it only while nothing is uploading (at start-up)."""
    files = store.files
    removed = 0
    for tmp in list(files.temp_files()):
        tmp.unlink(missing_ok=True)
        removed += 1
    on_disk = dict(files.stored_hashes())
    flagged = restored = 0
    with store.db.session() as s:
        rows = s.scalars(select(PhotoSubmissionRow)).all()
        referenced = {r.sha256 for r in rows}
        for row in rows:
            present = row.sha256 in on_disk
            if not present and row.file_state == FileState.stored.value:
                row.file_state = FileState.missing.value
                flagged += 1
            elif present and row.file_state == FileState.missing.value:
                row.file_state = FileState.stored.value
                restored += 1
    quarantined = 0
    for sha, path in on_disk.items():
        if sha not in referenced:
            files.move_to_quarantine(path)
            quarantined += 1
    for path in list(files.unknown_files()):
        files.move_to_quarantine(path)
        quarantined += 1
    report = ReconcileReport(removed, quarantined, flagged, restored)
    if removed or quarantined or flagged or restored:
        log.warning("photo store reconciled", extra=report.__dict__)
    return report
