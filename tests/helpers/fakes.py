"""Test doubles for models: fixed output, slow, failing, hanging. Real models live in perception/."""

from __future__ import annotations

import threading
import time

import numpy as np

from perception.findings import Finding, FrameFindings, ModelInfo
from perception.registry import ModelRegistry

BOX_FRACTION = (0.35, 0.35, 0.65, 0.65)  # where BoxModel reports its object, as fractions of the frame


class BoxModel:
    """Reports one object in the middle of every frame, after `delay_s`."""

    def __init__(self, delay_s: float = 0.0, name: str = "box") -> None:
        self.delay_s = delay_s
        self.calls = 0
        self._info = ModelInfo(name=name, version="test", labels=("thing",))

    @property
    def info(self) -> ModelInfo:
        return self._info

    def predict(self, frame_rgb: np.ndarray) -> FrameFindings:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        h, w = frame_rgb.shape[:2]
        fx0, fy0, fx1, fy1 = BOX_FRACTION
        box = (int(w * fx0), int(h * fy0), int(w * fx1), int(h * fy1))
        x0, y0, x1, y1 = box
        outline = (((x0, y0), (x1, y0), (x1, y1), (x0, y1)),)
        finding = Finding(label="thing", score=0.9, box=box, outline=outline, track_id=1, area_px=(x1 - x0) * (y1 - y0))
        return FrameFindings(model=self._info, frame_size=(w, h), objects=(finding,))


class FailingModel(BoxModel):
    """Raises on every call (after `healthy_calls` good ones)."""

    def __init__(self, healthy_calls: int = 0) -> None:
        super().__init__(name="failing")
        self.healthy_calls = healthy_calls

    def predict(self, frame_rgb: np.ndarray) -> FrameFindings:
        if self.calls >= self.healthy_calls:
            self.calls += 1
            raise RuntimeError("simulated model crash")
        return super().predict(frame_rgb)


class HangingModel(BoxModel):
    """Blocks on its `n`-th call until `release` is set (or 60 s pass, so no test leaks a thread forever)."""

    def __init__(self, hang_on_call: int = 1) -> None:
        super().__init__(name="hanging")
        self.hang_on_call = hang_on_call
        self.release = threading.Event()

    def predict(self, frame_rgb: np.ndarray) -> FrameFindings:
        if self.calls + 1 >= self.hang_on_call and not self.release.is_set():
            self.calls += 1
            self.release.wait(60)
            return super().predict(frame_rgb)
        return super().predict(frame_rgb)


class BatchBoxModel(BoxModel):
    """BoxModel that also batches across streams (perception.model.StreamBatchModel), recording which streams went
    into each batch. A batch sleeps `base_s + per_frame_s * size` (a network run: a fixed part and a part per frame).
    `fail` makes every batch raise; with `hang` set, a batch blocks until `release` is set."""

    def __init__(self, base_s: float = 0.02, per_frame_s: float = 0.01) -> None:
        super().__init__(name="batchbox")
        self.base_s = base_s
        self.per_frame_s = per_frame_s
        self.batches: list[tuple[str, ...]] = []
        self.forgotten: list[str] = []
        self.fail = False
        self.hang = threading.Event()  # set: the next batch blocks until `release` is set
        self.release = threading.Event()

    def predict_streams(self, frames):
        self.batches.append(tuple(f.stream for f in frames))
        if self.hang.is_set() and not self.release.is_set():
            self.release.wait(60)
        time.sleep(self.base_s + self.per_frame_s * len(frames))
        if self.fail:
            raise RuntimeError("simulated batch crash")
        return [BoxModel.predict(self, f.frame_rgb) for f in frames]

    def forget_stream(self, stream: str) -> None:
        self.forgotten.append(stream)


class CountingFactory:
    """A model factory that counts how often the model was loaded."""

    def __init__(self, make) -> None:
        self.make = make
        self.loads = 0

    def __call__(self):
        self.loads += 1
        return self.make()


class ScriptedVlm:
    """A VLM double: answers 'I see N object(s): labels' word by word, `delay_s` between words."""

    def __init__(self, delay_s: float = 0.0, words: int = 0) -> None:
        from perception.vlm.base import VlmInfo

        self.delay_s = delay_s
        self.extra_words = words
        self.requests: list = []
        self.stopped_early = 0
        self._info = VlmInfo("scripted", "test", "grounded")

    @property
    def info(self):
        return self._info

    async def answer(self, request):
        import asyncio

        self.requests.append(request)
        objects = request.findings.objects if request.findings else ()
        text = f"I see {len(objects)} object(s): {', '.join(o.label for o in objects) or 'none'}."
        words = text.split() + ["more"] * self.extra_words
        finished = False
        try:
            for i, word in enumerate(words):
                yield word if i == 0 else " " + word
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
            finished = True
        finally:
            if not finished:
                self.stopped_early += 1

    async def draft_report(self, context):
        raise NotImplementedError("not used by these tests")

    async def aclose(self) -> None:
        return None


def registry_with(**models: object) -> ModelRegistry:
    """A registry whose factories return the given instances (so tests can inspect them)."""
    registry = ModelRegistry()
    for name, model in models.items():
        registry.register(name, lambda m=model: m)  # type: ignore[misc]
    return registry


def keyword_vlm():
    """The real grounded backend with keyword intent matching: no embedding model to load per test app."""
    from perception.vlm.grounded import GroundedBackend

    return GroundedBackend(use_embeddings=False)
