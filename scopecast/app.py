"""The composition root: builds the app and shows a frame's whole path in one place.

    source (PyAV file/RTSP/device, or a peer's camera track)
      → FreshestFrame slot (newest frame wins)            stream.pipeline
      → model worker thread (perception FrameModel)       stream.pipeline
      → findings events on the data channel               stream.events / stream.session
      → overlay drawn on every outgoing frame             stream.tracks → overlay.draw
      → aiortc MediaRelay → encoder → each viewer         stream.hub / stream.session

A consult room (stream.rooms) is two such pipelines, private to the room: the patient's camera with the
consult model, seen with its overlay by the clinician only, and the clinician's camera, plain. Telehealth
decides who may join which room (`consult_grants` below) and stores captured frames.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from perception.model import FrameModel
from perception.registry import ModelRegistry
from perception.vlm.base import VlmBackend
from perception.vlm.factory import create_vlm
from scopecast.assets import SAMPLE_CLIP
from scopecast.http_guards import BodyDeadline, RequestBodyDeadline, SecurityHeaders
from scopecast.janus_sign_out import janus_sign_out
from scopecast.recording_setup import (
    ConsultRecorder,
    TelehealthCatalogue,
    TelehealthConsent,
    close_interrupted_recordings,
)
from scopecast.settings import Settings, parse_ice_server, split_source
from stream.access import StreamAccess
from stream.api import STATIC_DIR, SocketLimits, signed_in_viewer, streaming_router
from stream.hub import StreamHub
from stream.janus.fanout import JanusConfig, JanusFanout
from stream.janus.routes import janus_router
from stream.metrics import StreamMetrics
from stream.model_worker import BatchPolicy
from stream.pipeline import PipelineConfig
from stream.recording.api import recording_router as stream_recording_router
from stream.recording.live import LiveRecordings
from stream.rooms import ConsultRooms, RoomAuthorizer, RoomGrant, RoomRefused
from stream.sources import SourceSpec
from stream.turn import TurnRelay
from telehealth.account_api import account_router
from telehealth.analysis_api import analysis_router
from telehealth.analysis_worker import AnalysisRunner, SegmenterFactory, onnx_segmenter_factory
from telehealth.auth import Authenticator
from telehealth.capture_api import capture_router
from telehealth.case_api import case_router, intake_limits
from telehealth.consult_api import LiveConsults, consult_router
from telehealth.decode_slots import DecodeSlots
from telehealth.dicom.builder import InstanceBuilder
from telehealth.dicom.outbox import DicomOutbox
from telehealth.dicom.settings import DicomSettings
from telehealth.dicom.stow import StowSender
from telehealth.dicom_api import dicom_router
from telehealth.errors import TelehealthError
from telehealth.evidence_files import EvidenceFiles
from telehealth.first_run import FirstRunSetup
from telehealth.page_api import page_router
from telehealth.passwords import PasswordPolicy
from telehealth.patient_api import patient_router
from telehealth.photo_files import PhotoFiles
from telehealth.private_files import private_dir
from telehealth.recording_api import ConsentWithdrawn, LiveRecorder, recording_router
from telehealth.recording_files import RecordingFiles
from telehealth.recording_retention import RetentionSweep
from telehealth.report_api import report_router
from telehealth.report_sealing import ReportSealer
from telehealth.services import TelehealthServices
from telehealth.session_tokens import SessionTokens
from telehealth.settings import TelehealthSettings
from telehealth.signed_pdf_files import SignedPdfFiles
from telehealth.signing_key import clinic_signing_key
from telehealth.similar.embedding_runner import EmbedderFactory, EmbeddingRunner, onnx_embedder_factory
from telehealth.similar.open_index import open_index
from telehealth.similar.retrieval import SimilarCases
from telehealth.similar_api import similar_router
from telehealth.store.cases import CaseStore
from telehealth.store.database import Database
from telehealth.store.migrate import upgrade_to_head
from telehealth.store.reconcile import reconcile
from telehealth.store.vector_extension import pgvector_available

log = logging.getLogger(__name__)

PASS_THROUGH = "none"  # model name that turns the server into a plain relay (no AI, no overlay)


def default_registry(settings: Settings) -> ModelRegistry:
    """The shipped models (ONNX on onnxruntime)."""
    from perception.builtin import register_builtin_models

    registry = ModelRegistry()
    register_builtin_models(registry, threads=settings.model_threads)
    return registry


def model_batching(settings: Settings) -> BatchPolicy | None:
    """Cross-stream batching as the settings ask (None: a model thread per stream)."""
    if not settings.model_batching:
        return None
    return BatchPolicy(max_batch=settings.model_batch_max, latency_budget_s=settings.model_batch_budget_ms / 1000)


def build_telehealth(
    settings: TelehealthSettings,
    segmenter_factory: SegmenterFactory | None = None,
    dicom_settings: DicomSettings | None = None,
    embedder_factory: EmbedderFactory | None = None,
) -> TelehealthServices:
    """Migrate the database to head, reconcile photo files with rows, and build the services the routes share.

    `segmenter_factory` (called once, on the analysis worker thread) replaces the ONNX wound model, e.g. in tests.
    `dicom_settings` default to the SCOPECAST_DICOMWEB_* environment: with a URL, every analysed photo's instances
    are queued for the PACS and the app's lifespan starts the sender.
    `embedder_factory` (called once, on the embedding worker thread) replaces perception.embedder's ONNX embedder of
    the wound model; without one, similar cases are off and the log says so.
    Blocking (migrations and a directory walk): call it before the server starts serving, or via asyncio.to_thread.
    """
    private_dir(settings.data_dir)  # photos and evidence live here whichever database is used
    db = Database(settings.resolved_database_url())
    upgrade_to_head(db.engine)
    store = CaseStore(
        db, PhotoFiles(settings.photos_dir, settings.quarantine_dir), PasswordPolicy.from_settings(settings)
    )
    reconciled = reconcile(store)
    auth = Authenticator(
        store, SessionTokens(settings.secret_key.get_secret_value(), settings.session_ttl_s, settings.session_idle_s)
    )
    evidence = EvidenceFiles(settings.evidence_dir)
    factory = segmenter_factory if segmenter_factory is not None else onnx_segmenter_factory(settings.wound_model_path)
    dicom = dicom_outbox(store, evidence, dicom_settings if dicom_settings is not None else DicomSettings())
    similar = similar_cases(settings, store, embedder_factory)

    def after_analysis(photo_id: int) -> None:
        dicom.after_analysis(photo_id)
        similar.runner.after_analysis(photo_id)  # only queues: the embedding runs on its own thread

    analyses = AnalysisRunner(store, evidence, factory, settings.marker_mm, after_analysis=after_analysis)
    # The signing key is loaded (or, unconfigured, a development key made) before serving: a bad key path stops the
    # start with its reason rather than failing the first signature.
    sealer = ReportSealer(
        clinic_signing_key(settings), SignedPdfFiles(settings.signed_reports_dir), settings.clinic_zone
    )
    return TelehealthServices(
        settings,
        store,
        auth,
        reconciled,
        analyses,
        DecodeSlots(settings.max_concurrent_decodes),
        FirstRunSetup(),
        evidence,
        sealer,
        dicom,
        similar,
    )


def similar_cases(
    settings: TelehealthSettings, store: CaseStore, embedder_factory: EmbedderFactory | None
) -> SimilarCases:
    """The vector index (its backend logged with the reason for it) and the embedding runner over it."""
    database = "sqlite" if store.db.is_sqlite else "postgresql"
    opened = open_index(settings.similar_index, settings.similar_index_path, database, pgvector_available(store.db))
    # A fallback is worth a warning: the operator may want the extension (same answers, persisted index).
    log.log(logging.INFO if opened.index.backend == "sqlite-vec" else logging.WARNING, opened.message)
    factory = embedder_factory if embedder_factory is not None else onnx_embedder_factory(settings.wound_model_path)
    return SimilarCases(store, EmbeddingRunner(store, opened.index, factory), settings.clinic_wide_similar_cases)


def dicom_outbox(store: CaseStore, evidence: EvidenceFiles, settings: DicomSettings) -> DicomOutbox:
    """The DICOM outbox over the store; it sends only when the settings name a PACS."""
    sender = None if settings.url is None else StowSender(settings.url, settings.timeout_s)
    return DicomOutbox(InstanceBuilder(store, evidence, settings), sender, settings)


def telehealth_routers(
    services: TelehealthServices,
    vlm: VlmBackend,
    rooms: LiveConsults | None,
    recorder: LiveRecorder | None = None,
    consent_withdrawn: ConsentWithdrawn | None = None,
) -> list[APIRouter]:
    """Every telehealth route: accounts, cases and photos, analyses and trend, reports (drafted by `vlm`, the
    server's own backend), pages, recording consent and recordings (consult recording when `recorder` is given),
    and the video consults when the live rooms are given."""
    s = services
    routers = [
        account_router(s.store, s.auth, s.settings, s.first_run),
        case_router(s.store, s.auth, s.settings, s.analyses, s.decodes),
        patient_router(s.store, s.auth, s.settings),
        capture_router(s.store, s.auth, s.settings, s.analyses, s.decodes, intake_limits(s.settings)),
        analysis_router(s.store, s.auth, s.settings, s.evidence),
        dicom_router(s.store, s.auth, s.settings, s.dicom),
        report_router(s.store, s.auth, s.settings, s.evidence, vlm, s.sealer),
        page_router(s.settings),
        similar_router(s.similar, s.auth, s.settings),
        recording_router(
            s.store, s.auth, s.settings, RecordingFiles(s.settings.recordings_dir), recorder, consent_withdrawn
        ),
    ]
    if rooms is not None:
        routers.append(consult_routes(services, rooms))
    return routers


def consult_routes(services: TelehealthServices, rooms: LiveConsults) -> APIRouter:
    """The video-consult routes over the live rooms (the stream hub's, which this root owns)."""
    s = services
    return consult_router(s.store, s.auth, s.settings, s.analyses, intake_limits(s.settings), rooms, s.decodes)


def source_specs(settings: Settings) -> list[tuple[str, SourceSpec]]:
    if not settings.sources:
        return [("sample", SourceSpec(str(SAMPLE_CLIP), loop=True))] if settings.serve_sample else []
    return [
        (sid, SourceSpec(loc, loop=True))
        for sid, loc in (split_source(s, i + 1) for i, s in enumerate(settings.sources))
    ]


def create_app(
    settings: Settings,
    registry: ModelRegistry | None = None,
    vlm: VlmBackend | None = None,
    telehealth: TelehealthServices | None = None,
    room_authorizer: RoomAuthorizer | None = None,
    stream_access: StreamAccess | None = None,
) -> FastAPI:
    """Build the server. `registry` and `vlm` default to the shipped models and the configured VLM;
    telehealth (accounts, cases, photos, consults) is mounted when given. Consult rooms are open to whoever
    `room_authorizer` admits: by default telehealth's consult records decide, and without telehealth rooms are off.
    Streams need a signed-in user: by default telehealth's accounts decide (`stream_access` replaces that, e.g. in
    tests); a server with neither has no way to sign in and is refused."""
    if stream_access is None:
        if telehealth is None:
            raise ValueError("streams need sign-in: give create_app the telehealth services or a stream_access")
        from scopecast.stream_sign_in import telehealth_stream_access

        stream_access = telehealth_stream_access(telehealth, settings.allowed_origins)
    registry = registry if registry is not None else default_registry(settings)
    vlm = vlm if vlm is not None else create_vlm(settings.vlm)
    metrics = StreamMetrics()
    config = PipelineConfig(
        hang_timeout_s=settings.hang_timeout_s,
        stale_after_s=settings.stale_after_s,
        fade_after_s=settings.fade_after_s,
        sync_wait_ms=settings.sync_wait_ms,
        annotate=settings.model != PASS_THROUGH,
        max_inference_fps=settings.max_inference_fps,
        register_wait_ms=settings.register_wait_ms,
        pause_without_viewers=not settings.keep_sources_running,
    )

    def model_factory(name: str) -> Callable[[], FrameModel] | None:
        if name == PASS_THROUGH:
            return None
        return lambda: registry.create(name)

    hub = StreamHub(
        model_factory,
        settings.model,
        config,
        metrics,
        max_sessions=settings.max_sessions,
        max_sessions_per_address=settings.max_sessions_per_address,
        reclaim=collect_session_garbage,
        batching=model_batching(settings),
    )
    consult_model = None if settings.consult_model == PASS_THROUGH else settings.consult_model
    if room_authorizer is None and telehealth is not None:
        room_authorizer = consult_grants(telehealth)
    rooms = ConsultRooms(hub, metrics, consult_model, room_authorizer)
    recordings = live_recordings(hub, rooms, telehealth)
    retention = (
        RetentionSweep(
            telehealth.store,
            RecordingFiles(telehealth.settings.recordings_dir),
            telehealth.settings.recording_retention_days,
        )
        if telehealth is not None
        else None
    )
    ready = {"sources": False}
    turn = (
        TurnRelay(tuple(settings.turn_urls), settings.turn_secret.get_secret_value(), settings.turn_ttl_s)
        if settings.turn_urls and settings.turn_secret is not None
        else None
    )
    janus = janus_fanout(settings, hub, turn)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop_listening: Callable[[], None] | None = None
        if telehealth is not None:
            files = RecordingFiles(telehealth.settings.recordings_dir)
            await asyncio.to_thread(close_interrupted_recordings, telehealth.store, files)
        for stream_id, spec in source_specs(settings):
            await hub.add_source_stream(stream_id, spec)
        if telehealth is not None:
            # First: the index is rebuilt (a new model version) and missing vectors queued before new analyses'.
            telehealth.similar.runner.start()
            telehealth.analyses.resume_pending()  # photos stored before a crash still get analysed
            telehealth.dicom.start()  # with a PACS configured: resumes what was queued before the restart
        if janus is not None:
            janus.start()  # in the background: an unreachable Janus leaves viewers on the direct path
            if telehealth is not None:
                stop_listening = telehealth.auth.add_sign_out_listener(
                    janus_sign_out(janus, asyncio.get_running_loop())
                )
        if retention is not None:
            retention.start()
        ready["sources"] = True
        freeze_long_lived()
        warm_up = getattr(vlm, "warm_up", None)
        if warm_up is not None:  # in the background (scopecast serve loads it before the video starts)
            loop = asyncio.get_running_loop()
            warming = loop.run_in_executor(None, warm_up)
            # The VLM's libraries and weights are long-lived too: freeze again once they are loaded.
            warming.add_done_callback(lambda _done: loop.call_soon_threadsafe(freeze_long_lived))
        log.info("scopecast ready", extra={"streams": len(hub.streams()), "model": settings.model})
        try:
            yield
        finally:
            if stop_listening is not None:
                stop_listening()
            if janus is not None:
                await janus.close()
            if recordings is not None:
                await recordings.close()  # each file finished cleanly before its stream goes
            if retention is not None:
                await retention.aclose()
            await rooms.close()
            await hub.close()
            await vlm.aclose()
            if telehealth is not None:
                await telehealth.close()

    app = FastAPI(title="scopecast", version="0.1.0", lifespan=lifespan)
    app.add_middleware(
        RequestBodyDeadline, deadline=BodyDeadline(settings.body_idle_timeout_s, settings.body_min_bytes_per_s)
    )
    app.add_middleware(SecurityHeaders, connect_src=(janus.config.public_url,) if janus is not None else ())
    app.state.hub = hub
    app.state.metrics = metrics
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(
        streaming_router(
            hub,
            metrics,
            stream_access,
            limits=SocketLimits(settings.max_message_bytes, settings.offer_timeout_s, settings.max_socket_errors),
            video_codec=settings.video_codec,
            vlm=vlm,
            ice_servers=[parse_ice_server(url) for url in settings.ice_servers],
            rooms=rooms,
            turn=turn,
            ice_transport_policy=settings.ice_transport_policy,
            janus_viewers=janus.janus_viewers if janus is not None else None,
        )
    )
    app.include_router(janus_router(janus, signed_in_viewer(stream_access, metrics)))
    app.state.janus = janus

    if recordings is not None:
        app.include_router(stream_recording_router(recordings, stream_access, metrics))
    if telehealth is not None:
        recorder = ConsultRecorder(recordings) if recordings is not None else None
        withdrawn = stop_recordings_of(recordings) if recordings is not None else None
        for router in telehealth_routers(telehealth, vlm, rooms, recorder, withdrawn):
            app.include_router(router)
    app.state.rooms = rooms
    app.state.recordings = recordings

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(_INDEX_HTML)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        streams = {e.stream_id: e.pipeline.status.available for e in hub.streams()}
        ok = ready["sources"]
        return JSONResponse(
            {"ready": ok, "streams": streams, "sessions": hub.session_count}, status_code=200 if ok else 503
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def janus_fanout(settings: Settings, hub: StreamHub, turn: TurnRelay | None) -> JanusFanout | None:
    """With SCOPECAST_JANUS_URL: every stream published once into Janus (settings checked both URLs and the secret)."""
    if settings.janus_url is None or settings.janus_admin_url is None or settings.janus_admin_secret is None:
        return None
    ice = [parse_ice_server(url) for url in settings.ice_servers] + (
        [turn.credentials("scopecast-janus")] if turn is not None else []
    )
    return JanusFanout(
        hub,
        JanusConfig(
            url=settings.janus_url,
            admin_url=settings.janus_admin_url,
            admin_secret=settings.janus_admin_secret.get_secret_value(),
            public_url=settings.janus_public_url or settings.janus_url,
            token_ttl_s=settings.janus_token_ttl_s,
            room_admin_key=settings.janus_room_admin_key.get_secret_value() if settings.janus_room_admin_key else None,
            ice_servers=ice,
        ),
    )


def live_recordings(
    hub: StreamHub, rooms: ConsultRooms, telehealth: TelehealthServices | None
) -> LiveRecordings | None:
    """Recording needs somewhere to keep consent and recordings: telehealth's cases; without it, recording is off."""
    if telehealth is None:
        return None
    files = RecordingFiles(telehealth.settings.recordings_dir)
    return LiveRecordings(hub, rooms, TelehealthConsent(telehealth.store), TelehealthCatalogue(telehealth.store, files))


def stop_recordings_of(recordings: LiveRecordings) -> ConsentWithdrawn:
    async def withdrawn(case_id: int) -> None:
        await recordings.consent_withdrawn(case_id)

    return withdrawn


def freeze_long_lived() -> None:
    """Move what exists now (modules, models, settings: it lives as long as the server) out of every later garbage
    collection, so the one after each stream ends (collect_session_garbage) scans only what sessions made: measured
    2-8 ms instead of 130-170 ms with the grounded VLM's embedding model loaded."""
    gc.collect()
    gc.freeze()


def collect_session_garbage() -> None:
    """A WebRTC session's objects (peer connection, decoded frames, model tracker) form reference cycles that only a
    full collection frees, and CPython seldom runs one: without this, memory grew by megabytes with each stream."""
    started = time.perf_counter()
    freed = gc.collect()
    elapsed_ms = (time.perf_counter() - started) * 1000
    # It holds the event loop: say so when something long-lived was loaded after start-up and made it slow.
    level = logging.WARNING if elapsed_ms > 20 else logging.DEBUG
    log.log(level, "session garbage collected", extra={"objects": freed, "ms": round(elapsed_ms, 1)})


def consult_grants(telehealth: TelehealthServices) -> RoomAuthorizer:
    """Telehealth's join decision, in the streaming spine's terms."""
    decide = telehealth.join_authorizer()

    async def authorize(room_id: str, credential: str) -> RoomGrant:
        try:
            side, _record = await decide(room_id, credential)
        except TelehealthError as exc:
            raise RoomRefused(exc.reason) from None
        return RoomGrant(room_id, side)

    return authorize


_INDEX_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>scopecast</title>
<link rel="stylesheet" href="/static/scopecast.css"></head><body class="index">
<h1>scopecast</h1>
<p><a href="/signin">Sign in</a> (the first administrator account is made with the one-time link printed by
<code>scopecast serve</code>, or with <code>scopecast user add</code>)</p>
<ul>
<li><a href="/monitor">Surgeon monitor</a>: watch an annotated stream</li>
<li><a href="/capture">Camera publish</a>: send this device's camera, get the annotated stream back</li>
<li><a href="/patient">Patient</a>: send a wound photo (sign in with the account your GP created)</li>
<li><a href="/gp">GP</a>: cases, wound analysis, trend, reports, and video consults</li>
<li><a href="/docs">API</a> · <a href="/api/schema/events">event schema</a> · <a href="/metrics">metrics</a></li>
</ul></body></html>"""
