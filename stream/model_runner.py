"""How a stream's pipeline gets its model run: the interface, and the one-thread-per-stream way.

A pipeline does not care whether its frames go to a thread of its own or to a
worker shared with other streams (stream.model_worker): it asks a runner for
findings of its freshest frame and learns when that frame was taken into a run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import av

from perception.findings import FrameFindings
from perception.model import FrameModel
from stream.frames import frame_to_array
from stream.freshest import FreshestFrame, Taken
from stream.model_results import SourceFrame

# Called on the event loop the moment a frame is taken into a model run (for in-flight and hang tracking).
OnTaken = Callable[[Taken[SourceFrame]], None]


class ModelRunner(Protocol):
    """Runs one stream's model. Every method is called on the event loop."""

    async def load(self) -> FrameModel:
        """The model this stream runs, loaded; raises what loading raised."""
        ...

    async def run_freshest(
        self, frames: FreshestFrame[SourceFrame], seen: int, on_taken: OnTaken
    ) -> tuple[Taken[SourceFrame], FrameFindings]:
        """Findings of the newest frame after `seen`, taken as late as the model allows; raises SlotClosed when the
        slot closes, or what the model call raised."""
        ...

    def blocked_since(self, now: float) -> float | None:
        """While this stream waits behind another stream's model call: when that call started; else None."""
        ...

    def queue_wait_s(self, now: float) -> float:
        """How long a frame offered now waits before its model run starts (0 when the model is free)."""
        ...

    def close(self) -> None: ...


class OwnThreadRunner:
    """The model on a thread of this stream's own: one call in flight at a time, so a hung model cannot pile up
    threads, and it blocks no other stream."""

    def __init__(self, stream_id: str, factory: Callable[[], FrameModel]) -> None:
        self._factory = factory
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model:{stream_id}")
        self._model: FrameModel | None = None

    async def load(self) -> FrameModel:
        self._model = await asyncio.get_running_loop().run_in_executor(self._executor, self._factory)
        return self._model

    async def run_freshest(
        self, frames: FreshestFrame[SourceFrame], seen: int, on_taken: OnTaken
    ) -> tuple[Taken[SourceFrame], FrameFindings]:
        assert self._model is not None, "load() first"
        taken = await frames.next_after(seen)
        on_taken(taken)
        loop = asyncio.get_running_loop()
        findings = await loop.run_in_executor(self._executor, run_model, self._model, taken.item.frame)
        return taken, findings

    def blocked_since(self, now: float) -> float | None:
        return None

    def queue_wait_s(self, now: float) -> float:
        return 0.0

    def close(self) -> None:
        # A hung model call cannot be interrupted; its thread is released when it returns.
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._model = None


def run_model(model: FrameModel, frame: av.VideoFrame) -> FrameFindings:
    """Runs in a model thread: colour conversion and inference, timed together."""
    started = time.perf_counter()
    rgb = frame_to_array(frame, "rgb24")
    findings = model.predict(rgb)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return dataclasses.replace(findings, inference_ms=elapsed_ms)
