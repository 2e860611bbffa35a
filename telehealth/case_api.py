"""Routes of wound cases and their photos: list and open cases, send a photo (idempotent), read a photo back."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from telehealth.analysis_worker import AnalysisRunner
from telehealth.auth import Authenticator
from telehealth.decode_slots import DecodeSlots
from telehealth.errors import PhotoRejected
from telehealth.http_route import declared_length, limited_receive, telehealth_router
from telehealth.photo_intake import IntakeLimits, check_size, clean_photo, thumbnail_jpeg
from telehealth.records import Actor, Role
from telehealth.schemas import CaseCreate, CaseDetail, CaseOut, PhotoDateEdit, PhotoReceipt, RowId
from telehealth.settings import TelehealthSettings
from telehealth.store.cases import CaseStore

_MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the photo
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Photos are patient data: no shared cache may keep them, and browsers must not sniff them as anything else.
_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def intake_limits(settings: TelehealthSettings) -> IntakeLimits:
    return IntakeLimits(
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        min_brightness=settings.min_brightness,
        min_sharpness=settings.min_sharpness,
        jpeg_quality=settings.stored_jpeg_quality,
        max_decoded_bytes=settings.max_decoded_bytes,
        min_side=settings.min_photo_side,
    )


async def read_photo_field(request: Request, max_bytes: int) -> bytes:
    """The one file part of a multipart body, read under a byte limit so an oversize upload is cut off early."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise PhotoRejected(415, "send the photo as multipart/form-data with a file field named 'photo'")
    declared = declared_length(request)
    if declared is not None and declared > max_bytes + _MULTIPART_OVERHEAD:
        check_size(declared, max_bytes)
    limited = Request(request.scope, limited_receive(request.receive, max_bytes + _MULTIPART_OVERHEAD, "photo"))
    try:
        form = await limited.form(max_files=1, max_fields=8)
    except StarletteHTTPException as exc:  # our byte limit, or starlette's report of a malformed body
        if exc.status_code == 413:
            raise PhotoRejected(413, f"too large: over {max_bytes / 1_000_000:g} MB") from None
        if exc.status_code == 408:  # the server's body deadline: the upload stalled
            raise PhotoRejected(408, "the photo arrived too slowly; check the connection and send it again") from None
        raise PhotoRejected(400, f"malformed multipart body: {exc.detail}") from None
    except MultiPartException as exc:
        raise PhotoRejected(400, f"malformed multipart body: {exc.message}") from None
    try:
        upload = form.get("photo")
        if not isinstance(upload, UploadFile):
            raise PhotoRejected(422, "no photo: send the image in a file field named 'photo'")
        data = await upload.read()  # bounded: the body as a whole was capped above
        check_size(len(data), max_bytes)
        return data
    finally:
        await form.close()


def case_router(
    store: CaseStore, auth: Authenticator, settings: TelehealthSettings, analyses: AnalysisRunner, decodes: DecodeSlots
) -> APIRouter:
    """`decodes` bounds concurrent photo decodes; pass the one the consult router uses too."""
    router = telehealth_router(settings.max_json_bytes)
    limits = intake_limits(settings)
    anyone = auth.require()
    clinicians_and_patients = auth.require(Role.patient, Role.gp, Role.admin)

    @router.get("/api/cases", response_model=list[CaseOut], tags=["telehealth"])
    def list_cases(actor: Actor = Depends(anyone)) -> list[CaseOut]:
        return [CaseOut.of(c) for c in store.list_cases(actor)]

    @router.post("/api/cases", response_model=CaseOut, status_code=201, tags=["telehealth"])
    def open_case(body: CaseCreate, actor: Actor = Depends(clinicians_and_patients)) -> CaseOut:
        return CaseOut.of(store.create_case(actor, body.patient_id, body.label, body.wound_type, body.onset_date))

    @router.get("/api/cases/{case_id}", response_model=CaseDetail, tags=["telehealth"])
    def get_case(case_id: RowId, actor: Actor = Depends(anyone)) -> CaseDetail:
        case, photos = store.case_with_photos(actor, case_id)
        return CaseDetail(**CaseOut.of(case).model_dump(), photos=[PhotoReceipt.of(p) for p in photos])

    @router.post(
        "/api/cases/{case_id}/photos",
        response_model=PhotoReceipt,
        status_code=201,
        tags=["telehealth"],
        responses={200: {"description": "a retry with the same Idempotency-Key: the original receipt"}},
    )
    async def submit_photo(
        case_id: RowId,
        request: Request,
        response: Response,
        actor: Actor = Depends(auth.require(Role.patient, Role.gp)),
        idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
    ) -> PhotoReceipt:
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise PhotoRejected(400, "Idempotency-Key must be 1-128 letters, digits or ._:-")
        # Refuse before reading the body: a case the caller may not use, or a retry that already succeeded.
        await run_in_threadpool(store.require_case, actor, case_id)
        if idempotency_key is not None:
            prior = await run_in_threadpool(store.photo_for_idempotency_key, actor, idempotency_key)
            if prior is not None:
                if prior.case_id != case_id:
                    raise PhotoRejected(409, "Idempotency-Key already used for another case")
                response.status_code = 200
                return PhotoReceipt.of(prior)
        data = await read_photo_field(request, settings.max_upload_bytes)
        photo = await decodes.run(clean_photo, data, limits)
        record, created = await run_in_threadpool(store.add_photo, actor, case_id, photo, idempotency_key)
        response.status_code = 201 if created else 200
        if created:
            analyses.schedule(record.id)  # the receipt does not wait for the wound analysis
        return PhotoReceipt.of(record)

    @router.put("/api/photos/{photo_id}/taken-at", response_model=PhotoReceipt, tags=["telehealth"])
    def edit_taken_at(
        photo_id: RowId, body: PhotoDateEdit, actor: Actor = Depends(auth.require(Role.gp, Role.admin))
    ) -> PhotoReceipt:
        """Correct the date a photo was taken (the visit it counts for in the trend); audited."""
        return PhotoReceipt.of(store.set_photo_taken_at(actor, photo_id, body.as_datetime()))

    @router.get("/api/photos/{photo_id}", tags=["telehealth"], response_class=Response)
    def get_photo(photo_id: RowId, actor: Actor = Depends(anyone)) -> Response:
        record, data = store.read_photo(actor, photo_id, "photo")
        return Response(data, media_type=record.media_type, headers=_PRIVATE)

    @router.get("/api/photos/{photo_id}/thumbnail", tags=["telehealth"], response_class=Response)
    def get_thumbnail(photo_id: RowId, actor: Actor = Depends(anyone)) -> Response:
        _record, data = store.read_photo(actor, photo_id, "thumbnail")
        return Response(thumbnail_jpeg(data, settings.thumbnail_px), media_type="image/jpeg", headers=_PRIVATE)

    return router
