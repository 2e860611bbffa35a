"""Bad input is refused with a clear message before it reaches any model."""

from __future__ import annotations

import numpy as np
import pytest

from perception.vlm import (
    AskRequest,
    InvalidImage,
    InvalidQuestion,
    ReportDraft,
    Turn,
    VlmBusy,
    VlmError,
    parse_sections,
)
from perception.vlm.base import MAX_HISTORY_TURNS
from perception.vlm.measurements import Measurements
from perception.vlm.prompts import SYSTEM_PROMPT, build_messages


@pytest.mark.parametrize(
    "question, message",
    [
        ("", "question is empty"),
        ("   \n ", "question is empty"),
        ("x" * 2001, "too long: 2001 characters, at most 2000"),
        (b"what is this", "must be text, got bytes"),
        (42, "must be text, got int"),
        (None, "must be text, got NoneType"),
        ("what\x00is\x01this", "plain text"),
    ],
)
def test_bad_questions(question, message):
    with pytest.raises(InvalidQuestion, match=message) as err:
        AskRequest(question)  # type: ignore[arg-type]
    assert isinstance(err.value, ValueError) and isinstance(err.value, VlmError)


def test_limits_are_inclusive_and_text_is_stripped():
    assert AskRequest("  " + "y" * 2000 + " ").question == "y" * 2000
    assert AskRequest("how big?\n(in %)").question == "how big?\n(in %)"


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((4, 4), np.uint8), "H×W×3"),
        (np.zeros((4, 4, 4), np.uint8), "H×W×3"),
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_images(image, message):
    with pytest.raises(InvalidImage, match=message):
        AskRequest("describe", image=image)


def test_history_is_bounded_and_in_prompt():
    hist = [(f"q{i}", f"a{i}") for i in range(20)]
    req = AskRequest("and now?", history=hist)  # type: ignore[arg-type]
    assert len(req.history) == MAX_HISTORY_TURNS and req.history[-1] == Turn("q19", "a19")
    msgs = build_messages(req, with_image=True)
    assert msgs[0]["content"][0]["text"] == SYSTEM_PROMPT and "do not diagnose" in SYSTEM_PROMPT
    assert msgs[-1]["content"][0] == {"type": "image"}
    assert "Question: and now?" in msgs[-1]["content"][1]["text"]
    assert len(msgs) == 2 + 2 * MAX_HISTORY_TURNS


def test_prompt_facts_and_no_identifiers(wound_findings):
    req = AskRequest(
        "how large?",
        findings=wound_findings,
        measurements=Measurements(area_cm2=4.25, size_not_measured=None, infection_flagged=False),
    )
    text = build_messages(req, with_image=False)[-1]["content"][0]["text"]
    assert "wound (confidence 0.91) in the upper left of the frame, covering about 5.9%" in text
    assert "track #3" in text and "Wound area: 4.25 cm²" in text and "Infection risk flag: no signal found" in text
    # Typed fields only: an identifier has nowhere to go.
    with pytest.raises(TypeError, match="patient_name"):
        Measurements(area_cm2=4.25, patient_name="Jane Doe")  # type: ignore[call-arg]


def test_a_size_that_was_not_measured_says_why():
    facts = Measurements(size_not_measured="not measured: no scale marker in the photo").facts()
    assert facts == {"wound_area": "not measured: no scale marker in the photo"}
    assert Measurements(area_cm2=2.0).area_of("wound") == 2.0 and Measurements(area_cm2=2.0).area_of("polyp") is None


def test_busy_message():
    assert str(VlmBusy(3)) == "busy: 3 requests waiting, try again"


def test_parse_sections_lenient():
    text = (
        "Here is the draft.\n**Findings:**\n- wound upper left\n- instrument nearby\n"
        "## Impression\nGranulating wound.\nFollow up: review in 1 week\nUncertainty: low contrast frame"
    )
    s = parse_sections(text)
    assert s["findings"] == "- wound upper left\n- instrument nearby"
    assert s["impression"].endswith("Granulating wound.") and s["follow_up"] == "review in 1 week"
    assert s["uncertainty"] == "low contrast frame"


def test_report_draft_cannot_be_final():
    from pydantic import ValidationError

    base = dict(
        findings=[], impression="", follow_up="", uncertainty="", model_name="m", model_version="1", backend="grounded"
    )
    with pytest.raises(ValidationError):
        ReportDraft(**base, status="signed")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ReportDraft(**base, requires_signature=False)  # type: ignore[arg-type]
