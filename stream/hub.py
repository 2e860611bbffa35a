"""The set of live streams on this server, their viewers, and the session budget."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from perception.model import FrameModel
from stream.metrics import StreamMetrics
from stream.model_runner import ModelRunner
from stream.model_worker import BatchPolicy, ModelWorkers
from stream.pipeline import PipelineConfig, StreamPipeline
from stream.private_frames import PrivateFrameTrack
from stream.sources import SourceError, SourceSpec, VideoSource, probe_source
from stream.tracks import AnnotatedTrack, pump_track

log = logging.getLogger(__name__)

ModelFactoryLookup = Callable[[str], Callable[[], FrameModel] | None]


class UnknownStream(LookupError):
    def __init__(self, stream_id: str, known: list[str]) -> None:
        super().__init__(f"unknown stream {stream_id!r}; live streams: {', '.join(known) or 'none'}")
        self.stream_id = stream_id


class TooManySessions(RuntimeError):
    pass


@dataclass
class StreamEntry:
    stream_id: str
    kind: str  # "source" (server-side video) or "camera" (published by a peer)
    label: str
    model_name: str
    pipeline: StreamPipeline
    output: AnnotatedTrack
    source: VideoSource | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    size: tuple[int, int] | None = None
    # A consult room's stream: never listed, watched or asked about through the public API, only by its room.
    private: bool = False
    # Outputs at other overlay opacities (0.0: plain video), each drawn once per frame for all its viewers.
    other_outputs: dict[float, AnnotatedTrack] = field(default_factory=dict)

    def output_at(self, opacity: float, make: Callable[[float], AnnotatedTrack]) -> AnnotatedTrack:
        if opacity >= 1.0:
            return self.output
        if opacity not in self.other_outputs:
            self.other_outputs[opacity] = make(opacity)
        return self.other_outputs[opacity]


class StreamHub:
    """Creates and owns pipelines; fans each annotated stream out to viewers through one relay."""

    def __init__(
        self,
        models: ModelFactoryLookup,
        default_model: str,
        config: PipelineConfig,
        metrics: StreamMetrics,
        max_sessions: int = 16,
        draw_threads: int = 2,
        max_sessions_per_address: int | None = None,
        reclaim: Callable[[], None] | None = None,
        batching: BatchPolicy | None = None,
    ) -> None:
        """`reclaim` runs after a stream is removed: the composition root collects the garbage a WebRTC session leaves
        in reference cycles (aiortc's own objects among them), which would otherwise wait for a rare full collection.

        `batching`: every stream of a model shares one model worker that batches their freshest frames; None: each
        stream runs its model on a thread of its own."""
        self._models = models
        self._default_model = default_model
        self._config = config
        self._metrics = metrics
        self._max_sessions = max_sessions
        self._sessions = 0
        # One address may not hold every slot (None: no limit beyond the server's).
        self._max_sessions_per_address = max_sessions_per_address or max_sessions
        self._by_address: collections.Counter[str] = collections.Counter()
        self._relay = MediaRelay()
        self._draw_executor = ThreadPoolExecutor(max_workers=draw_threads, thread_name_prefix="overlay")
        self._streams: dict[str, StreamEntry] = {}
        self._camera_ids = itertools.count(1)
        self._reclaim = reclaim
        self._workers = ModelWorkers(batching, metrics) if batching is not None else None

    # -- streams -----------------------------------------------------------------------------

    async def add_source_stream(
        self, stream_id: str, spec: SourceSpec, *, label: str = "", model_name: str | None = None
    ) -> StreamEntry:
        """Open a server-side source (validated first) and start its pipeline. Raises SourceError."""
        if stream_id in self._streams:
            raise ValueError(f"stream {stream_id!r} already exists")
        loop = asyncio.get_running_loop()
        width, height, _fps = await loop.run_in_executor(None, probe_source, spec)
        entry = self._new_entry(stream_id, "source", label or spec.display_name, model_name)
        entry.size = (width, height)

        def on_end(error: SourceError | None) -> None:
            if error is not None:
                log.error("source failed", extra={"stream": stream_id, "error": str(error)})
            else:
                log.info("source ended", extra={"stream": stream_id})
            asyncio.ensure_future(self.remove_stream(stream_id))

        pipeline = entry.pipeline
        # A file nobody watches is not decoded either (when the server pauses unwatched sources).
        wanted = (lambda: pipeline.viewers > 0) if pipeline.config.pause_without_viewers else None
        entry.source = VideoSource(spec, loop, pipeline.push_frame, on_end, wanted)
        entry.source.start()
        log.info("stream started", extra={"stream": stream_id, "kind": "source", "size": f"{width}x{height}"})
        return entry

    def add_camera_stream(
        self,
        track: MediaStreamTrack,
        label: str | None,
        *,
        model_name: str | None = None,
        annotate: bool | None = None,
        private: bool = False,
    ) -> StreamEntry:
        """Start a pipeline fed by a peer's camera track. `annotate`: run the model and draw (None: as the server is set)."""
        prefix = "room" if private else "cam"
        stream_id = f"{prefix}-{next(self._camera_ids)}-{secrets.token_hex(6 if private else 3)}"
        entry = self._new_entry(stream_id, "camera", label or "camera", model_name, annotate=annotate)
        entry.private = private
        entry.tasks.append(asyncio.create_task(pump_track(track, entry.pipeline), name=f"pump:{stream_id}"))
        log.info("stream started", extra={"stream": stream_id, "kind": "camera"})
        return entry

    def _new_entry(
        self, stream_id: str, kind: str, label: str, model_name: str | None, *, annotate: bool | None = None
    ) -> StreamEntry:
        name = model_name or self._default_model
        # Server sources and published cameras follow the server's setting (annotate=None); a room decides per seat.
        config = self._config if annotate is None else dataclasses.replace(self._config, annotate=annotate)
        if kind != "source":  # a camera or a room is watched by the one who sent it: never paused
            config = dataclasses.replace(config, pause_without_viewers=False)
        factory = self._models(name) if config.annotate else None
        runner: ModelRunner | None = None
        if factory is not None and self._workers is not None:
            runner = self._workers.runner(stream_id, name, factory)
        pipeline = StreamPipeline(stream_id, factory, config, self._metrics, runner)
        output = AnnotatedTrack(pipeline, self._metrics, self._draw_executor)
        entry = StreamEntry(stream_id, kind, label, name if config.annotate else "none", pipeline, output)
        self._streams[stream_id] = entry
        pipeline.start()
        return entry

    async def remove_stream(self, stream_id: str) -> None:
        entry = self._streams.pop(stream_id, None)
        if entry is None:
            return
        if entry.source is not None:
            await asyncio.get_running_loop().run_in_executor(None, entry.source.stop)
        for task in entry.tasks:
            task.cancel()
        await asyncio.gather(*entry.tasks, return_exceptions=True)
        await entry.pipeline.close()
        entry.output.stop()
        for other in entry.other_outputs.values():
            other.stop()
        log.info("stream removed", extra={"stream": stream_id})
        if self._reclaim is not None:
            self._reclaim()

    def get(self, stream_id: str) -> StreamEntry:
        """A public stream by id. Consult-room streams do not exist here (their room hands them to its members
        directly), and the error lists public streams only."""
        entry = self._streams.get(stream_id)
        if entry is None or entry.private:
            raise UnknownStream(stream_id, sorted(e.stream_id for e in self.streams()))
        return entry

    def streams(self) -> list[StreamEntry]:
        """Public streams: server sources and published cameras, not consult rooms."""
        return [e for e in self._streams.values() if not e.private]

    def all_streams(self) -> list[StreamEntry]:
        return list(self._streams.values())

    # -- viewers -----------------------------------------------------------------------------

    def subscribe(self, stream_id: str, overlay_opacity: float = 1.0) -> MediaStreamTrack:
        """A viewer's own copy of a stream's annotated track (newest frame only, no buffering); `overlay_opacity`
        picks the output drawn at that opacity (0: the plain video)."""
        return self.subscribe_entry(self.get(stream_id), overlay_opacity)

    def subscribe_entry(self, entry: StreamEntry, overlay_opacity: float = 1.0) -> MediaStreamTrack:
        """`subscribe` for a stream already in hand, private ones included (a consult recording reads the patient's
        stream this way); give it back with `unsubscribe`."""
        output = entry.output_at(
            overlay_opacity, lambda level: AnnotatedTrack(entry.pipeline, self._metrics, self._draw_executor, level)
        )
        entry.pipeline.viewers += 1
        # Every reader's encoder rewrites the frame it is handed: each gets its own (see stream/private_frames.py).
        return PrivateFrameTrack(self._relay.subscribe(output, buffered=False))

    def unsubscribe(self, stream_id: str, track: MediaStreamTrack) -> None:
        track.stop()
        entry = self._streams.get(stream_id)
        if entry is not None:
            entry.pipeline.viewers = max(0, entry.pipeline.viewers - 1)

    # -- sessions ----------------------------------------------------------------------------

    def open_session(self, address: str = "") -> None:
        """Take a session slot for a socket from `address`; TooManySessions when the server or that address is full."""
        if self._sessions >= self._max_sessions:
            raise TooManySessions(f"too many sessions: the limit is {self._max_sessions}")
        if self._by_address[address] >= self._max_sessions_per_address:
            raise TooManySessions(
                f"too many open sockets from your address: the limit is {self._max_sessions_per_address}"
            )
        self._sessions += 1
        self._by_address[address] += 1

    def close_session(self, address: str = "") -> None:
        self._sessions = max(0, self._sessions - 1)
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]

    @property
    def session_count(self) -> int:
        return self._sessions

    @property
    def model_workers(self) -> ModelWorkers | None:
        """The shared model workers (None when each stream runs its model on its own thread)."""
        return self._workers

    @property
    def draw_executor(self) -> ThreadPoolExecutor:
        return self._draw_executor

    async def close(self) -> None:
        for stream_id in list(self._streams):
            await self.remove_stream(stream_id)
        if self._workers is not None:
            self._workers.close()
        self._draw_executor.shutdown(wait=False, cancel_futures=True)
