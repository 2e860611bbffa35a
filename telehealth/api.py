"""The telehealth HTTP API: telehealth_router builds the routes; create_telehealth is the composition root's entry."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from perception.vlm import VlmBackend
from telehealth.accounts import add_user, authenticate
from telehealth.analysis_api import analysis_routes
from telehealth.analysis_runner import AnalysisRunner, SegmenterFactory, onnx_segmenter_factory
from telehealth.auth import Authenticator
from telehealth.body_limits import (
    declared_length,
    limited_receive,
    telehealth_route_class,
)
from telehealth.consult_api import JoinAuthorizer, LiveConsults, consult_router, join_authorizer
from telehealth.decode_slots import DecodeSlots
from telehealth.errors import InvalidSession, NotFound, PhotoRejected, SetupDone
from telehealth.evidence_files import EvidenceFiles
from telehealth.first_run import SETUP_PATH, FirstRunSetup
from telehealth.login_throttle import LoginThrottle, ThrottleLimits
from telehealth.passwords import PasswordPolicy
from telehealth.photo_files import PhotoFiles
from telehealth.photo_intake import (
    IntakeLimits,
    check_size,
    clean_photo,
    thumbnail_jpeg,
)
from telehealth.private_files import private_dir
from telehealth.records import Actor, Role, UserRecord
from telehealth.report_api import report_routes
from telehealth.schemas import (
    CaseCreate,
    CaseDetail,
    CaseOut,
    InviteAccept,
    InviteCreate,
    InviteOut,
    LoginRequest,
    PhotoReceipt,
    RowId,
    SessionOut,
    SetupRequest,
    UserOut,
)
from telehealth.session_tokens import SESSION_COOKIE, SessionTokens
from telehealth.settings import TelehealthSettings
from telehealth.store.cases import CaseStore
from telehealth.store.database import Database
from telehealth.store.invites import accept_invite, create_invite
from telehealth.store.migrate import upgrade_to_head
from telehealth.store.reconcile import ReconcileReport, reconcile

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the photo
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Photos are patient data: no shared cache may keep them, and browsers must not sniff them as anything else.
_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def intake_limits(settings: TelehealthSettings) -> IntakeLimits:
    return IntakeLimits(
        max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels, min_brightness=settings.min_brightness,
        min_sharpness=settings.min_sharpness, jpeg_quality=settings.stored_jpeg_quality,
        max_decoded_bytes=settings.max_decoded_bytes,
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


def default_vlm() -> VlmBackend:
    """The grounded backend: quotes the analysis' measurements, never invents (no model download needed)."""
    from perception.vlm.grounded import GroundedBackend

    return GroundedBackend(use_embeddings=False)


def telehealth_router(
    store: CaseStore,
    auth: Authenticator,
    settings: TelehealthSettings,
    analyses: AnalysisRunner | None = None,
    vlm: VlmBackend | None = None,
    decodes: DecodeSlots | None = None,
    first_run: FirstRunSetup | None = None,
) -> APIRouter:
    """`decodes` bounds concurrent photo decodes; pass the one the consult router uses too (TelehealthServices does).
    `first_run` holds the setup link's token (TelehealthServices.first_run_link makes it)."""
    router = APIRouter(route_class=telehealth_route_class(settings.max_json_bytes))
    limits = intake_limits(settings)
    if decodes is None:
        decodes = DecodeSlots(settings.max_concurrent_decodes)
    if first_run is None:
        first_run = FirstRunSetup()
    evidence = analyses.evidence if analyses is not None else EvidenceFiles(settings.evidence_dir)
    if analyses is None:
        analyses = AnalysisRunner(store, evidence, onnx_segmenter_factory(settings.wound_model_path), settings.marker_mm)
    pages = {name: (STATIC_DIR / f"{name}.html").read_bytes() for name in ("patient", "gp", "setup", "signin")}
    static_files = {p.name: p.read_bytes() for p in STATIC_DIR.iterdir() if p.suffix in _STATIC_TYPES}
    anyone = auth.require()
    clinicians_and_patients = auth.require(Role.patient, Role.gp, Role.admin)

    def session_response(user: UserRecord, response: Response) -> SessionOut:
        token, expires_at = auth.sign_in(user.id)
        response.set_cookie(
            SESSION_COOKIE, token, max_age=settings.session_ttl_s, httponly=True, secure=settings.cookie_secure,
            samesite="strict", path="/",
        )
        return SessionOut(token=token, expires_at=expires_at, user=UserOut.of(user))

    throttle = LoginThrottle(ThrottleLimits(
        settings.login_failures_per_account, settings.login_failures_per_address, settings.login_window_s))

    def client_address(request: Request) -> str | None:
        return request.client.host if request.client and settings.login_failures_per_address else None

    @router.post("/api/login", response_model=SessionOut, tags=["telehealth"],
                 responses={429: {"description": "too many failed sign-ins; see Retry-After"}})
    def login(body: LoginRequest, request: Request, response: Response) -> SessionOut:
        account = body.email.strip().lower()
        address = client_address(request)
        throttle.check(account, address)
        try:
            user = authenticate(store, body.email, body.password)
        except InvalidSession:
            throttle.failed(account, address)
            raise
        throttle.succeeded(account)
        return session_response(user, response)

    @router.post("/api/logout", status_code=204, tags=["telehealth"])
    def logout(request: Request, response: Response) -> Response:
        """Revoke the caller's session: the bearer token's, and the cookie's when the browser holds one (signing out
        ends both). Revoking by cookie on a POST is safe: the worst a forged request can do is sign someone out."""
        presented = {auth.token_from(request), request.cookies.get(SESSION_COOKIE)} - {None, ""}
        for token in presented:
            auth.sign_out(token)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=settings.cookie_secure, httponly=True, samesite="strict")
        response.status_code = 204
        return response

    @router.get("/api/me", response_model=UserOut, tags=["telehealth"])
    def me(actor: Actor = Depends(anyone)) -> UserOut:
        return UserOut.of(store.user_record(actor))

    @router.post("/api/invites", response_model=InviteOut, status_code=201, tags=["telehealth"])
    def invite(body: InviteCreate, actor: Actor = Depends(auth.require(Role.gp, Role.admin))) -> InviteOut:
        made = create_invite(store, actor, body.email, settings.invite_ttl_s)
        # The token rides in the fragment: browsers never send it to the server, so it stays out of access logs.
        url = f"{settings.public_base_url.rstrip('/')}/patient#invite={made.token}"
        return InviteOut(invite_url=url, expires_at=made.expires_at, patient_id=made.patient_id)

    @router.post("/api/invites/{token}/accept", response_model=SessionOut, status_code=201, tags=["telehealth"],
                 responses={401: {"description": "the email has an account and this is not its password"},
                            429: {"description": "too many failed sign-ins; see Retry-After"}})
    def accept(token: str, body: InviteAccept, request: Request, response: Response) -> SessionOut:
        user = accept_invite(store, token, body.password, throttle, client_address(request))
        return session_response(user, response)

    @router.get("/api/cases", response_model=list[CaseOut], tags=["telehealth"])
    def list_cases(actor: Actor = Depends(anyone)) -> list[CaseOut]:
        return [CaseOut.of(c) for c in store.list_cases(actor)]

    @router.post("/api/cases", response_model=CaseOut, status_code=201, tags=["telehealth"])
    def open_case(body: CaseCreate, actor: Actor = Depends(clinicians_and_patients)) -> CaseOut:
        return CaseOut.of(store.create_case(actor, body.patient_id, body.label))

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

    @router.get("/api/photos/{photo_id}", tags=["telehealth"], response_class=Response)
    def get_photo(photo_id: RowId, actor: Actor = Depends(anyone)) -> Response:
        record, data = store.read_photo(actor, photo_id, "photo")
        return Response(data, media_type=record.media_type, headers=_PRIVATE)

    @router.get("/api/photos/{photo_id}/thumbnail", tags=["telehealth"], response_class=Response)
    def get_thumbnail(photo_id: RowId, actor: Actor = Depends(anyone)) -> Response:
        _record, data = store.read_photo(actor, photo_id, "thumbnail")
        return Response(thumbnail_jpeg(data, settings.thumbnail_px), media_type="image/jpeg", headers=_PRIVATE)

    @router.get("/patient", response_class=HTMLResponse, include_in_schema=False)
    async def patient() -> HTMLResponse:
        return HTMLResponse(pages["patient"], headers={"Cache-Control": "no-cache"})

    @router.get("/gp", response_class=HTMLResponse, include_in_schema=False)
    async def gp() -> HTMLResponse:
        return HTMLResponse(pages["gp"], headers={"Cache-Control": "no-cache"})

    @router.get(SETUP_PATH, response_class=HTMLResponse, include_in_schema=False)
    async def setup_page() -> HTMLResponse:
        return HTMLResponse(pages["setup"], headers={"Cache-Control": "no-cache"})

    @router.get("/signin", response_class=HTMLResponse, include_in_schema=False)
    async def signin_page() -> HTMLResponse:
        """Sign in, then go to ?next= (a same-origin path only; checked in signin.js)."""
        return HTMLResponse(pages["signin"], headers={"Cache-Control": "no-cache"})

    @router.post("/api/setup", response_model=SessionOut, status_code=201, tags=["telehealth"],
                 responses={403: {"description": "wrong or no setup link"}, 410: {"description": "an account exists"}})
    def first_account(body: SetupRequest, response: Response) -> SessionOut:
        """Create the first account, an admin, with the first-run link's token; signs them in like /api/login."""
        if store.has_users():
            raise SetupDone("setup is done: an account exists, sign in at /signin")
        with first_run.claim(body.token):
            user = add_user(store, body.email, body.password, Role.admin)  # the usual email and password rules
        return session_response(user, response)

    analysis_routes(router, store, auth, evidence)
    report_routes(router, store, auth, evidence, vlm if vlm is not None else default_vlm())

    @router.get("/telehealth/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        data = static_files.get(name)
        if data is None:
            raise NotFound("no such file")
        return Response(data, media_type=_STATIC_TYPES[Path(name).suffix], headers={"Cache-Control": "no-cache"})

    return router


@dataclass
class TelehealthServices:
    """Everything telehealth runs on, built by create_telehealth; the app mounts `router` and awaits close()."""

    settings: TelehealthSettings
    store: CaseStore
    auth: Authenticator
    router: APIRouter
    reconciled: ReconcileReport
    analyses: AnalysisRunner
    decodes: DecodeSlots  # shared by the upload and the consult-capture routes
    first_run: FirstRunSetup

    def first_run_link(self, base_url: str | None = None) -> str | None:
        """The one-time setup link `{public_base_url}/setup#token=...` while no account exists, else None.

        Each call makes a new token and voids the previous link, so print the newest. `base_url` (e.g.
        "http://127.0.0.1:8080") stands in for an unset public_base_url; without either the link is the bare path.
        The token rides in the fragment, which browsers never send, so it stays out of access logs. Blocking (one
        database read): call it before serving, or via asyncio.to_thread.
        """
        if self.store.has_users():
            return None
        base = (self.settings.public_base_url or base_url or "").rstrip("/")
        return f"{base}{SETUP_PATH}#token={self.first_run.new_token()}"

    def consult_router(self, live: LiveConsults) -> APIRouter:
        """The video-consult routes, given the live rooms (built by the composition root, which owns the stream hub)."""
        return consult_router(
            self.store, self.auth, self.settings, self.analyses, intake_limits(self.settings), live, self.decodes
        )

    def join_authorizer(self) -> JoinAuthorizer:
        return join_authorizer(self.store, self.auth)

    async def close(self) -> None:
        await self.analyses.aclose()
        await asyncio.to_thread(self.store.db.dispose)


def create_telehealth(
    settings: TelehealthSettings,
    segmenter_factory: SegmenterFactory | None = None,
    vlm: VlmBackend | None = None,
) -> TelehealthServices:
    """Migrate the database to head, reconcile photo files with rows, and build the router.

    `segmenter_factory` (called once, on the analysis worker thread) replaces the ONNX wound model, e.g. in tests;
    `vlm` replaces the grounded report drafter. Blocking (migrations and a directory walk): call it before the server
    starts serving, or via asyncio.to_thread.
    """
    private_dir(settings.data_dir)  # photos and evidence live here whichever database is used
    db = Database(settings.resolved_database_url())
    upgrade_to_head(db.engine)
    files = PhotoFiles(settings.photos_dir, settings.quarantine_dir)
    store = CaseStore(db, files, PasswordPolicy.from_settings(settings))
    report = reconcile(store)
    auth = Authenticator(store, SessionTokens(settings.secret_key.get_secret_value(), settings.session_ttl_s))
    factory = segmenter_factory if segmenter_factory is not None else onnx_segmenter_factory(settings.wound_model_path)
    analyses = AnalysisRunner(store, EvidenceFiles(settings.evidence_dir), factory, settings.marker_mm)
    decodes = DecodeSlots(settings.max_concurrent_decodes)
    first_run = FirstRunSetup()
    router = telehealth_router(store, auth, settings, analyses, vlm, decodes, first_run)
    return TelehealthServices(settings, store, auth, router, report, analyses, decodes, first_run)
