"""Routes for similar cases: a photo's nearest earlier photos of other cases, their thumbnails, and the index's
progress. Clinicians only: patients never see other patients' images (403)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict

from telehealth.auth import Authenticator
from telehealth.http_route import telehealth_router
from telehealth.photo_intake import thumbnail_jpeg
from telehealth.records import Actor, Role
from telehealth.schemas import RowId
from telehealth.settings import TelehealthSettings
from telehealth.similar.retrieval import SimilarAnswer, SimilarCases
from telehealth.store.clinic_options import set_clinic_wide_similar_cases

_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
MAX_K = 20


class ClinicWideSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


def similar_router(similar: SimilarCases, auth: Authenticator, settings: TelehealthSettings) -> APIRouter:
    router = telehealth_router(settings.max_json_bytes)
    clinicians = auth.require(Role.gp, Role.surgeon, Role.admin)

    # Plain `def` routes: FastAPI runs them in its threadpool, so the database and the index stay off the loop.
    @router.get("/api/photos/{photo_id}/similar", response_model=SimilarAnswer, tags=["telehealth"])
    def get_similar(
        photo_id: RowId,
        k: Annotated[int, Query(ge=1, le=MAX_K, description="how many similar cases, 1 to 20")] = 5,
        actor: Actor = Depends(clinicians),
    ) -> SimilarAnswer:
        return similar.find(actor, photo_id, k)

    @router.get("/api/photos/{photo_id}/similar/{match_id}/thumbnail", tags=["telehealth"], response_class=Response)
    def get_similar_thumbnail(photo_id: RowId, match_id: RowId, actor: Actor = Depends(clinicians)) -> Response:
        sha256 = similar.thumbnail_photo_sha256(actor, photo_id, match_id)
        data = similar.store.files.read(sha256)
        return Response(thumbnail_jpeg(data, settings.thumbnail_px), media_type="image/jpeg", headers=_PRIVATE)

    @router.put("/api/similar/clinic-wide", tags=["telehealth"])
    def set_clinic_wide(body: ClinicWideSwitch, actor: Actor = Depends(auth.require(Role.admin))) -> dict[str, bool]:
        """Clinic-wide similar cases on or off (admin; audited; kept across restarts). On: results from other
        clinicians' patients are shown de-identified, and every such query is audited."""
        return {"clinic_wide": set_clinic_wide_similar_cases(similar.store, actor, body.enabled)}

    @router.get("/api/similar/status", tags=["telehealth"])
    def get_similar_status(actor: Actor = Depends(clinicians)) -> dict[str, Any]:
        s = similar.runner.status()
        return {
            "state": s.state.value,
            "model_version": s.model_version,
            "embedded": s.embedded,
            "total": s.total,
            "backend": s.backend,
            "clinic_wide": similar.clinic_wide,
            "message": s.message,
        }

    return router
