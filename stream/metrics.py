"""Prometheus metrics for streams and sessions, on a registry owned by one app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from stream.registration import REGISTRATION_KINDS

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


class StreamMetrics:
    """All counters of the streaming spine. One instance per application, never global."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames_in = Counter("scopecast_frames_in_total", "Frames received from a source", ["stream"], registry=r)
        self.frames_out = Counter("scopecast_frames_out_total", "Annotated frames sent", ["stream"], registry=r)
        self.frames_dropped = Counter(
            "scopecast_frames_dropped_total",
            "Frames skipped because a newer one arrived (stage=model: not inferred; stage=output: not sent)",
            ["stream", "stage"],
            registry=r,
        )
        self.inference_seconds = Histogram(
            "scopecast_inference_seconds",
            "Model time per frame",
            ["stream", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.pipeline_seconds = Histogram(
            "scopecast_pipeline_seconds",
            "From frame arrival at the server to its annotated copy leaving the pipeline (before encode)",
            ["stream"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.findings = Counter(
            "scopecast_findings_total",
            "Model results delivered to a stream (rate() gives its findings per second)",
            ["stream"],
            registry=r,
        )
        self.model_frames = Counter(
            "scopecast_model_frames_total",
            "Frames a model produced findings for, all streams together (rate() gives model frames per second)",
            ["model"],
            registry=r,
        )
        self.model_batch_size = Histogram(
            "scopecast_model_batch_size",
            "Frames (one per stream) in each run of a shared model worker",
            ["model"],
            buckets=_BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.model_batch_seconds = Histogram(
            "scopecast_model_batch_seconds",
            "Wall time of each run of a shared model worker, the whole batch",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_errors = Counter("scopecast_model_errors_total", "Model calls that raised", ["stream"], registry=r)
        self.ai_available = Gauge(
            "scopecast_ai_available", "1 while AI findings are live on a stream", ["stream"], registry=r
        )
        self.sessions = Gauge("scopecast_sessions", "Open WebRTC sessions", ["role"], registry=r)
        self.signaling_errors = Counter(
            "scopecast_signaling_errors_total", "Rejected signaling messages", ["code"], registry=r
        )
        self.access_refused = Counter(
            "scopecast_stream_access_refused_total",
            "Streaming requests refused for want of a valid sign-in, the right role or an allowed origin",
            ["surface", "code"],  # surface: socket, api, page
            registry=r,
        )
        self.overlay_frames = Counter(
            "scopecast_overlay_frames_total",
            "Annotated frames by how their findings relate to them: own (computed from the frame), carried (moved onto "
            "it by motion), lost (motion not trusted: nothing drawn), none (no findings yet)",
            ["stream", "registration"],
            registry=r,
        )
        self.open_sockets = Gauge(
            "scopecast_signaling_sockets", "Open signaling sockets (each holds a session slot)", registry=r
        )

    def forget_stream(self, stream_id: str) -> None:
        """Drop a closed stream's series so /metrics does not grow with every camera ever seen."""
        for metric in (
            self.frames_in,
            self.frames_out,
            self.ai_available,
            self.model_errors,
            self.pipeline_seconds,
            self.findings,
        ):
            try:
                metric.remove(stream_id)
            except KeyError:
                pass
        for kind in REGISTRATION_KINDS:
            try:
                self.overlay_frames.remove(stream_id, kind)
            except KeyError:
                pass
        for stage in ("model", "output"):
            try:
                self.frames_dropped.remove(stream_id, stage)
            except KeyError:
                pass
