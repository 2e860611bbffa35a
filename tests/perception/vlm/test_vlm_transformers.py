"""Local transformers backend: real generation on tiny random VLMs of two
architectures (LLaVA, Idefics3/SmolVLM) loaded by path."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from perception.vlm import AskRequest, ReportContext, VlmBusy, VlmUnavailable, collect
from perception.vlm.measurements import Measurements
from perception.vlm.testing import save_tiny_idefics3, save_tiny_llava, save_tiny_text_lm
from perception.vlm.transformers_local import TransformersBackend, waiting_on

BUILDERS = {"llava": save_tiny_llava, "idefics3": save_tiny_idefics3}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def model_dir(request, tmp_path_factory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)


async def test_streams_pieces_with_image(model_dir, wound_findings):
    backend = TransformersBackend(model_dir, max_new_tokens=12)
    pieces = [
        p async for p in backend.answer(AskRequest("where is the wound?", image=frame(), findings=wound_findings))
    ]
    assert len(pieces) >= 3 and "".join(pieces).strip()
    assert backend.last_generation.tokens == 12 and backend.last_generation.done.is_set()
    # Text-only question on the same VLM works too (no image part in the prompt).
    assert (await collect(backend.answer(AskRequest("describe the findings", findings=wound_findings)))).strip()
    assert backend.info.backend == "transformers" and backend.info.version.startswith(
        json.loads((model_dir / "config.json").read_text())["model_type"]
    )


async def test_cancel_stops_generation_early(model_dir):
    backend = TransformersBackend(model_dir, max_new_tokens=1500)
    gen = backend.answer(AskRequest("describe this frame", image=frame()))
    assert await gen.__anext__()
    await gen.aclose()
    stats = backend.last_generation
    assert await asyncio.to_thread(stats.done.wait, 30), "worker thread did not finish"
    assert stats.cancelled and stats.tokens < 1500
    # Cancelling the consuming task stops it as well, and the device is free afterwards.
    task = asyncio.create_task(collect(backend.answer(AskRequest("describe this frame"))))
    while backend.last_generation is stats or backend.last_generation.tokens < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(backend.last_generation.done.wait, 30)
    assert backend.last_generation.tokens < 1500
    assert (await collect(TransformersBackend(model_dir, max_new_tokens=3).answer(AskRequest("ok?")))).strip()


async def test_busy_queue(tmp_path_factory):
    path = save_tiny_llava(tmp_path_factory.mktemp("busy"))
    backend = TransformersBackend(path, max_new_tokens=1500, queue_size=1)
    first = backend.answer(AskRequest("describe"))
    await first.__anext__()  # holds the device
    waiting = asyncio.create_task(
        collect(TransformersBackend(path, max_new_tokens=2, queue_size=1).answer(AskRequest("second")))
    )
    while waiting_on(backend.device) == 0 and not waiting.done():
        await asyncio.sleep(0.01)
    # Instances on the same device share one slot and one queue.
    with pytest.raises(VlmBusy, match=r"^busy: 1 requests waiting, try again$"):
        await collect(backend.answer(AskRequest("third")))
    await first.aclose()
    assert (await asyncio.wait_for(waiting, 60)).strip()


async def test_report_draft(tmp_path_factory, wound_findings):
    backend = TransformersBackend(
        save_tiny_llava(tmp_path_factory.mktemp("report")), max_new_tokens=8, report_max_new_tokens=16
    )
    draft = await backend.draft_report(
        ReportContext(findings=(wound_findings,), evidence_frames=("f9",), measurements=Measurements(area_cm2=3.0))
    )
    assert draft.status == "ai_draft" and draft.requires_signature and draft.measurements == {"wound_area_cm2": 3.0}
    assert draft.findings  # gibberish model: falls back to the detections as findings


def test_missing_and_non_vlm_paths(tmp_path):
    with pytest.raises(VlmUnavailable, match="does not exist"):
        TransformersBackend(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VlmUnavailable, match="no config.json"):
        TransformersBackend(tmp_path / "empty")
    text_lm = save_tiny_text_lm(tmp_path / "text")
    with pytest.raises(VlmUnavailable, match="not a vision-language model: model_type 'llama'"):
        TransformersBackend(text_lm)
