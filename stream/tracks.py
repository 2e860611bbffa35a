"""Media tracks: the annotated output of a pipeline, and the reader that feeds a pipeline from a peer."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from concurrent.futures import Executor
from typing import cast

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from overlay.draw import OverlayState, draw_overlay
from stream.frames import array_to_frame, ensure_yuv420p, frame_to_array
from stream.freshest import SlotClosed
from stream.media_clock import VIDEO_CLOCK_HZ, VIDEO_TIME_BASE
from stream.metrics import StreamMetrics
from stream.model_results import ModelResult, SourceFrame
from stream.pipeline import StreamPipeline
from stream.registration import CARRIED, LOST

log = logging.getLogger(__name__)


class AnnotatedTrack(MediaStreamTrack):
    """Sends every newest source frame, drawn with the newest findings.

    One instance per stream; viewers get it through aiortc's MediaRelay, so
    drawing happens once per frame whatever the number of viewers. Drawing runs
    in `draw_executor`, never on the event loop. Timestamps are re-stamped from
    the arrival clock so looping files and restarted cameras stay monotonic.
    """

    kind = "video"

    def __init__(
        self, pipeline: StreamPipeline, metrics: StreamMetrics, draw_executor: Executor, overlay_opacity: float = 1.0
    ) -> None:
        """`overlay_opacity` scales the findings' opacity on this output (0: the plain video, nothing drawn)."""
        super().__init__()
        self.overlay_opacity = overlay_opacity
        self._pipeline = pipeline
        self._metrics = metrics
        self._draw_executor = draw_executor
        self._seen = 0

    @property
    def last_sent_seq(self) -> int:
        """Sequence number (in the pipeline's slot) of the last frame this track returned."""
        return self._seen

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pipeline = self._pipeline
        try:
            self._seen, source, out = await next_output_frame(
                pipeline,
                self._seen,
                self._metrics,
                self._draw_executor,
                draw=pipeline.viewers > 0 and self.overlay_opacity > 0,
                opacity=self.overlay_opacity,
            )
        except SlotClosed:
            self.stop()
            raise MediaStreamError from None
        # One clock per stream, not per output: a viewer switched to another output (overlay off, another opacity)
        # must see timestamps that keep rising, or its jitter buffer drops the frames.
        out.pts = int((source.arrival - pipeline.clock_origin) * VIDEO_CLOCK_HZ)
        out.time_base = VIDEO_TIME_BASE
        # The relay hands this one frame object to every reader, and a viewer's encoder rebases its pts in place:
        # the arrival rides along untouched for readers that need the exact time (the recorder).
        out.opaque = source.arrival
        return out


async def next_output_frame(
    pipeline: StreamPipeline,
    seen: int,
    metrics: StreamMetrics,
    draw_executor: Executor,
    *,
    draw: bool,
    opacity: float = 1.0,
) -> tuple[int, SourceFrame, av.VideoFrame]:
    """The next newest frame after `seen`, drawn with the newest findings when `draw` and the pipeline annotates.

    Returns (its sequence number, the source frame, the frame to send); the caller stamps pts. Raises SlotClosed
    when the pipeline has ended. Shared by the fan-out track and consult-room views.
    """
    taken = await pipeline.frames.next_after(seen)
    stream_id = pipeline.stream_id
    if taken.skipped:
        metrics.frames_dropped.labels(stream_id, "output").inc(taken.skipped)
    source = taken.item
    if pipeline.config.sync_wait_ms > 0:
        await pipeline.wait_for_result(taken.seq, pipeline.config.sync_wait_ms / 1000)
    if not draw or not pipeline.config.annotate:
        out = ensure_yuv420p(source.frame)  # nobody is watching, or plain relay: no drawing work
    else:
        await pipeline.wait_for_own_result(taken.seq)  # bounded, and only when the model can make it
        result = pipeline.latest_result
        state = overlay_state(pipeline, source)
        if opacity < 1.0:
            state = dataclasses.replace(state, opacity=state.opacity * opacity)
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(
            draw_executor, render_registered, pipeline, taken.seq, source, result, state, metrics
        )
    metrics.frames_out.labels(stream_id).inc()
    metrics.pipeline_seconds.labels(stream_id).observe(time.monotonic() - source.arrival)
    return taken.seq, source, out


def overlay_state(pipeline: StreamPipeline, source: SourceFrame) -> OverlayState:
    """What to draw on `source`: the newest findings faded by their age, and the AI status."""
    status = pipeline.status
    result: ModelResult | None = pipeline.latest_result
    if not status.available or result is None:
        return OverlayState(
            findings=None,
            ai_available=status.available,
            status_text=status.reason,
            content_paused=status.kind == "content",
        )
    config = pipeline.config
    age = max(0.0, source.arrival - result.source.arrival)
    if age <= config.fade_after_s:
        opacity = 1.0
    else:
        span = max(1e-3, config.stale_after_s - config.fade_after_s)
        opacity = max(0.0, 1.0 - (age - config.fade_after_s) / span)
    latency = f"AI {result.findings.inference_ms:.0f} ms | age {age * 1000:.0f} ms"
    return OverlayState(findings=result.findings, opacity=opacity, ai_available=True, latency_text=latency)


def render_registered(
    pipeline: StreamPipeline,
    seq: int,
    source: SourceFrame,
    result: ModelResult | None,
    state: OverlayState,
    metrics: StreamMetrics,
) -> av.VideoFrame:
    """Carry the findings onto this frame (or drop them), then draw. Runs in a worker thread."""
    registered, how = pipeline.registrar.register(seq, source, result, state)
    metrics.overlay_frames.labels(pipeline.stream_id, how).inc()
    if how in (CARRIED, LOST) and registered.latency_text:
        note = "carried" if how == CARRIED else "motion lost"
        registered = dataclasses.replace(registered, latency_text=f"{registered.latency_text} | {note}")
    return render_frame(source.frame, registered)


def render_frame(frame: av.VideoFrame, state: OverlayState) -> av.VideoFrame:
    """Convert, draw, convert back. Runs in a worker thread (PyAV and OpenCV release the GIL)."""
    image = frame_to_array(frame, "bgr24")
    draw_overlay(image, state)
    return array_to_frame(image)


async def pump_track(track: MediaStreamTrack, pipeline: StreamPipeline) -> None:
    """Drain a peer's track into a pipeline as fast as frames arrive.

    aiortc queues decoded frames without bound; reading continuously here and
    keeping only the newest in the pipeline's slot is what keeps latency flat.
    """
    while True:
        try:
            # A camera track yields video frames; aiortc types recv() for every kind of track.
            frame = cast(av.VideoFrame, await track.recv())
        except MediaStreamError:
            return
        pipeline.push_frame(frame)
