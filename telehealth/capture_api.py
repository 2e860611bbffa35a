"""Routes for a patient's capture: live checks of a camera frame before the photo is taken, and the history of
what they sent with its status."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from PIL import Image
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from telehealth.analysis_worker import AnalysisRunner
from telehealth.auth import Authenticator
from telehealth.capture_check import Check, image_checks, wound_check
from telehealth.decode_slots import DecodeSlots
from telehealth.errors import PhotoRejected
from telehealth.http_route import declared_length, limited_receive, telehealth_router
from telehealth.photo_intake import IntakeLimits, decode, to_clean_rgb
from telehealth.records import Actor, Role
from telehealth.settings import TelehealthSettings
from telehealth.store.cases import CaseStore
from telehealth.store.photo_history import photo_history
from telehealth.wound.segmentation import ContentNotRecognised

MAX_FRAME_BYTES = 2_000_000  # a preview frame: the page sends about 1280 px JPEGs, ~200 kB


class CheckOut(BaseModel):
    name: str
    passed: bool
    message: str

    @classmethod
    def of(cls, check: Check) -> CheckOut:
        return cls(name=check.name, passed=check.passed, message=check.message)


class CaptureCheckOut(BaseModel):
    ready: bool  # every check passed: the page may say "take the photo now"
    checks: list[CheckOut]


class SentPhotoOut(BaseModel):
    case_label: str | None
    taken_at: datetime
    received_at: datetime
    status: str  # "received" or "reviewed"
    reviewed_at: datetime | None
    thumbnail_url: str


def capture_router(
    store: CaseStore,
    auth: Authenticator,
    settings: TelehealthSettings,
    analyses: AnalysisRunner,
    decodes: DecodeSlots,
    limits: IntakeLimits,
) -> APIRouter:
    router = telehealth_router(settings.max_json_bytes)
    senders = auth.require(Role.patient, Role.gp)

    @router.post("/api/capture-check", response_model=CaptureCheckOut, tags=["telehealth"])
    async def capture_check(request: Request, actor: Actor = Depends(senders)) -> CaptureCheckOut:
        """Checks of one camera frame (the body: a JPEG or PNG, at most 2 MB); nothing is stored."""
        declared = declared_length(request)
        if declared is not None and declared > MAX_FRAME_BYTES:
            raise PhotoRejected(413, f"frame too large: over {MAX_FRAME_BYTES / 1_000_000:g} MB")
        body = b""
        try:
            async for chunk in Request(
                request.scope, limited_receive(request.receive, MAX_FRAME_BYTES, "frame")
            ).stream():
                body += chunk
        except StarletteHTTPException as exc:
            raise PhotoRejected(exc.status_code, str(exc.detail)) from None
        if not body:
            raise PhotoRejected(422, "no frame: send the camera frame as the request body (image/jpeg)")

        def decoded() -> Image.Image:
            with decode(body, limits) as image:
                return to_clean_rgb(image)

        frame = await decodes.run(decoded)
        checks = await run_in_threadpool(
            image_checks, frame, settings.min_brightness, settings.min_sharpness, settings.marker_mm
        )
        rgb = np.asarray(frame)
        try:
            mask = await analyses.find_wound(rgb)
            model_available = mask is not None
        except ContentNotRecognised:
            mask, model_available = None, True
        checks.append(wound_check(mask, model_available))
        return CaptureCheckOut(ready=all(c.passed for c in checks), checks=[CheckOut.of(c) for c in checks])

    @router.get("/api/my-photos", response_model=list[SentPhotoOut], tags=["telehealth"])
    def my_photos(actor: Actor = Depends(auth.require(Role.patient))) -> list[SentPhotoOut]:
        """What the patient sent, newest first, with whether the clinic has reviewed it."""
        return [
            SentPhotoOut(
                case_label=p.case_label,
                taken_at=p.taken_at,
                received_at=p.received_at,
                status="reviewed" if p.reviewed_at else "received",
                reviewed_at=p.reviewed_at,
                thumbnail_url=f"/api/photos/{p.photo_id}/thumbnail",
            )
            for p in photo_history(store, actor)
        ]

    return router
