"""The served app with several sources of one model: one model load, batched runs, and /metrics that show it."""

from __future__ import annotations

import asyncio
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from perception.registry import ModelRegistry
from scopecast.app import create_app
from scopecast.assets import SAMPLE_CLIP
from scopecast.settings import Settings
from tests.helpers.fakes import BatchBoxModel, CountingFactory, keyword_vlm
from tests.helpers.servers import running_server
from tests.helpers.stream_access import CLINICIAN_HEADERS, fixed_token_access

SOURCES = ["a", "b", "c"]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _metrics_when(http: httpx.AsyncClient, ready, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while True:
        samples = _samples((await http.get("/metrics")).text)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.2)


def _app(factory: CountingFactory, **settings: object):
    registry = ModelRegistry()
    registry.register("batchbox", factory)
    return create_app(
        Settings(
            sources=[f"{s}={SAMPLE_CLIP}" for s in SOURCES],
            model="batchbox",
            keep_sources_running=True,  # the model runs with nobody watching, so no viewer is needed here
            **settings,  # type: ignore[arg-type]
        ),
        registry,
        vlm=keyword_vlm(),
        stream_access=fixed_token_access(),
    )


def _findings(samples, stream: str) -> float:
    return samples.get(("scopecast_findings_total", (("stream", stream),)), 0.0)


async def test_sources_of_one_model_share_one_load_and_metrics_show_batches_and_findings_per_stream():
    model = BatchBoxModel(base_s=0.03, per_frame_s=0.01)
    factory = CountingFactory(lambda: model)
    app = _app(factory)
    async with running_server(app) as addr:
        async with httpx.AsyncClient(base_url=f"http://{addr}", headers=CLINICIAN_HEADERS) as http:
            samples = await _metrics_when(http, lambda s: all(_findings(s, x) >= 20 for x in SOURCES))
    assert all(_findings(samples, x) >= 20 for x in SOURCES), {x: _findings(samples, x) for x in SOURCES}
    assert factory.loads == 1
    batches = samples[("scopecast_model_batch_size_count", (("model", "batchbox"),))]
    frames = samples[("scopecast_model_batch_size_sum", (("model", "batchbox"),))]
    assert frames / batches > 1.5, f"three 25 fps sources and a 60 ms model, yet {frames / batches:.2f} frames a batch"
    assert samples[("scopecast_model_frames_total", (("model", "batchbox"),))] >= 60
    assert ("scopecast_model_batch_seconds_count", (("model", "batchbox"),)) in samples


async def test_without_batching_each_source_runs_its_own_model_thread():
    factory = CountingFactory(lambda: BatchBoxModel(base_s=0.01, per_frame_s=0.0))
    app = _app(factory, model_batching=False)
    async with running_server(app) as addr:
        async with httpx.AsyncClient(base_url=f"http://{addr}", headers=CLINICIAN_HEADERS) as http:
            samples = await _metrics_when(http, lambda s: all(_findings(s, x) >= 10 for x in SOURCES))
    assert all(_findings(samples, x) >= 10 for x in SOURCES)
    assert factory.loads == len(SOURCES)
    assert not any(name.startswith("scopecast_model_batch") for name, _ in samples)
