"""Runs wound analyses of new photos in the background, on one worker thread with its own segmenter.

The upload's receipt does not wait for the analysis; `wait_idle()` lets tests (and shutdown) await completion.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from telehealth.evidence_files import EvidenceFiles
from telehealth.store.analyses import AnalysisRecord, photo_to_analyse, save_analysis, unanalysed_photo_ids
from telehealth.store.cases import CaseStore
from telehealth.wound import (
    OnnxWoundSegmenter,
    Segmenter,
    StoredAnalysis,
    analyse_wound_photo,
    default_wound_model_path,
)
from telehealth.wound.segmentation import ContentNotRecognised, WoundMask

log = logging.getLogger(__name__)

NOT_INSTALLED = "not analysed: wound model not installed"

# Called once, on the worker thread: a segmenter, or None when no wound model is installed.
SegmenterFactory = Callable[[], Segmenter | None]
# Called on the worker thread with the photo's id once its analysis is saved (e.g. to queue its DICOM for the PACS).
AfterAnalysis = Callable[[int], None]


def analyse_stored_photo(
    store: CaseStore, evidence: EvidenceFiles, photo_id: int, segment: Segmenter | None, marker_mm: float = 20.0
) -> AnalysisRecord:
    """Analyse one stored photo and save the result; a missing model or a failure is saved as such, never raised."""
    photo = photo_to_analyse(store, photo_id)
    evidence_path = None
    model_name, model_version = "none", "-"
    if segment is None:
        stored = StoredAnalysis(status="not_analysed", reason=NOT_INSTALLED)
    else:
        try:
            with Image.open(io.BytesIO(store.files.read(photo.sha256))) as img:
                rgb = np.asarray(img.convert("RGB"))  # stored photos already have EXIF orientation applied
            analysis = analyse_wound_photo(rgb, segment, marker_mm=marker_mm, previous=photo.previous)
            evidence_path = evidence.put(analysis.evidence.overlay_png)
            model_name, model_version = analysis.model.name, analysis.model.version
            stored = StoredAnalysis(status="analysed", assessment=analysis.assessment())
        except ContentNotRecognised as exc:
            stored = StoredAnalysis(status="not_analysed", reason=str(exc))
        except Exception as exc:  # noqa: BLE001 - a bad photo or model must not lose the upload; it is recorded
            log.warning("wound analysis failed", extra={"photo_id": photo_id, "error": type(exc).__name__})
            stored = StoredAnalysis(status="failed", reason=f"analysis failed: {type(exc).__name__}")
    record = save_analysis(store, photo_id, model_name, model_version, stored, evidence_path)
    log.info("wound analysis saved", extra={"photo_id": photo_id, "analysis_id": record.id, "status": record.status})
    return record


def onnx_segmenter_factory(path: Path | None = None) -> SegmenterFactory:
    def load() -> Segmenter | None:
        model_path = path if path is not None else default_wound_model_path()
        if not model_path.is_file():
            log.info("no wound model installed: photos are stored without analysis")
            return None
        return OnnxWoundSegmenter.from_path(model_path)

    return load


class AnalysisRunner:
    def __init__(
        self,
        store: CaseStore,
        evidence: EvidenceFiles,
        segmenter_factory: SegmenterFactory,
        marker_mm: float = 20.0,
        after_analysis: AfterAnalysis | None = None,
    ) -> None:
        self.store = store
        self._after = after_analysis
        self.evidence = evidence
        self._factory = segmenter_factory
        self._marker_mm = marker_mm
        # One thread: the segmenter is not safe for concurrent calls, and two cores are shared with the server.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wound-analysis")
        self._segmenter: Segmenter | None = None
        self._loaded = False
        self._tasks: set[asyncio.Task[AnalysisRecord | None]] = set()

    def _segment(self) -> Segmenter | None:
        if not self._loaded:  # only ever touched on the single worker thread
            self._loaded = True
            try:
                self._segmenter = self._factory()
            except Exception as exc:  # noqa: BLE001 - a broken model file must not stop uploads
                log.warning("wound model failed to load", extra={"error": type(exc).__name__})
                self._segmenter = None
        return self._segmenter

    def analyse_blocking(self, photo_id: int) -> AnalysisRecord:
        record = analyse_stored_photo(self.store, self.evidence, photo_id, self._segment(), self._marker_mm)
        if self._after is not None:
            try:
                self._after(photo_id)
            except Exception as exc:  # noqa: BLE001 - the analysis is saved; what follows must not undo that
                log.error("after-analysis step failed", extra={"photo_id": photo_id, "error": type(exc).__name__})
        return record

    async def analyse(self, photo_id: int) -> AnalysisRecord:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.analyse_blocking, photo_id)

    def schedule(self, photo_id: int) -> asyncio.Task[AnalysisRecord | None]:
        """Analyse in the background; the task never raises (a failure is logged with ids only)."""

        async def run() -> AnalysisRecord | None:
            try:
                return await self.analyse(photo_id)
            except Exception as exc:  # noqa: BLE001
                log.error("wound analysis job failed", extra={"photo_id": photo_id, "error": type(exc).__name__})
                return None

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _find_wound_blocking(self, rgb: npt.NDArray[np.uint8]) -> WoundMask | None:
        segment = self._segment()
        if segment is None:
            return None
        return segment(rgb)

    async def find_wound(self, rgb: npt.NDArray[np.uint8]) -> WoundMask | None:
        """The wound model's mask of a camera frame (the live capture check), on the analysis thread; None without
        a wound model. Raises ContentNotRecognised for a frame the model does not take for a wound photo."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._find_wound_blocking, rgb)

    def resume_pending(self) -> int:
        """Schedule every stored photo that has no analysis yet (the server stopped before it ran).

        Call once the event loop runs; returns how many were queued.
        """
        pending = unanalysed_photo_ids(self.store)
        for photo_id in pending:
            self.schedule(photo_id)
        if pending:
            log.info("resuming wound analyses", extra={"count": len(pending)})
        return len(pending)

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.wait_idle()
        self._executor.shutdown(wait=False)
