"""Routes for wound analyses and the healing trend of a case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from telehealth.auth import Authenticator
from telehealth.case_trend import trend_json, trend_plots
from telehealth.evidence_files import EvidenceFiles
from telehealth.http_route import telehealth_router
from telehealth.records import Actor
from telehealth.schemas import RowId
from telehealth.settings import TelehealthSettings
from telehealth.store.analyses import case_analyses, read_analysis, read_evidence
from telehealth.store.cases import CaseStore

_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def analysis_router(
    store: CaseStore, auth: Authenticator, settings: TelehealthSettings, evidence: EvidenceFiles
) -> APIRouter:
    router = telehealth_router(settings.max_json_bytes)
    anyone = auth.require()

    # Plain `def` routes: FastAPI runs them in its threadpool, so the database, files and plotting stay off the loop.
    @router.get("/api/photos/{photo_id}/analysis", tags=["telehealth"])
    def get_analysis(photo_id: RowId, actor: Actor = Depends(anyone)) -> dict[str, Any]:
        record = read_analysis(store, actor, photo_id)
        if record is None:
            return {"photo_id": photo_id, "status": "pending"}
        return {
            "photo_id": photo_id,
            "analysis_id": record.id,
            "status": record.status,
            "reason": record.stored.reason,
            "model": {"name": record.model_name, "version": record.model_version},
            "created_at": record.created_at.isoformat(),
            "analysis": None if record.assessment is None else record.assessment.model_dump(mode="json"),
            "evidence_url": f"/api/photos/{photo_id}/evidence.png" if record.evidence_path else None,
        }

    @router.get("/api/photos/{photo_id}/evidence.png", tags=["telehealth"], response_class=Response)
    def get_evidence(photo_id: RowId, actor: Actor = Depends(anyone)) -> Response:
        return Response(read_evidence(store, evidence, actor, photo_id), media_type="image/png", headers=_PRIVATE)

    @router.get("/api/cases/{case_id}/trend", tags=["telehealth"])
    def get_trend(case_id: RowId, actor: Actor = Depends(anyone)) -> dict[str, Any]:
        return {"case_id": case_id, **trend_json(case_analyses(store, actor, case_id))}

    @router.get("/api/cases/{case_id}/trend.png", tags=["telehealth"], response_class=Response)
    def get_trend_png(case_id: RowId, actor: Actor = Depends(anyone)) -> Response:
        return Response(trend_plots(case_analyses(store, actor, case_id)).png, media_type="image/png", headers=_PRIVATE)

    @router.get("/api/cases/{case_id}/trend.svg", tags=["telehealth"], response_class=Response)
    def get_trend_svg(case_id: RowId, actor: Actor = Depends(anyone)) -> Response:
        return Response(
            trend_plots(case_analyses(store, actor, case_id)).svg, media_type="image/svg+xml", headers=_PRIVATE
        )

    return router
