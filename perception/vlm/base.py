"""The one interface every VLM backend implements, and the messages it takes.

Backends differ wildly (a rule-based answerer, a local transformers model, a
remote OpenAI-compatible server) but the stream/telehealth code must not care,
so they all take an ``AskRequest`` and stream text pieces back.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from perception.findings import FrameFindings
from perception.image_check import ImageCheckError, check_rgb_image
from perception.vlm.info import BackendKind as BackendKind
from perception.vlm.info import VlmInfo as VlmInfo
from perception.vlm.measurements import NO_MEASUREMENTS, Measurements
from perception.vlm.report import ReportDraft

MAX_QUESTION_CHARS = 2000
# Enough turns for a follow-up ("and how large is it?") without letting the
# prompt grow without bound during a long procedure.
MAX_HISTORY_TURNS = 6


class VlmError(Exception):
    """Anything that stops a VLM from answering; the message is shown to the user."""


class VlmBusy(VlmError):
    """Too many requests are already waiting for the model; the caller should retry later."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"busy: {waiting} requests waiting, try again")
        self.waiting = waiting


class VlmUnavailable(VlmError):
    """The model cannot be used at all (server down, path missing, not a VLM)."""


class InvalidQuestion(VlmError, ValueError):
    """The question itself is unusable; a ValueError too so form validation can catch it."""


class InvalidImage(VlmError, ValueError):
    """The image is not an RGB uint8 H×W×3 array."""


@dataclass(frozen=True)
class Turn:
    """One earlier question and the answer given to it."""

    question: str
    answer: str


def validate_question(question: object) -> str:
    """The question stripped, or `InvalidQuestion` saying exactly what is wrong with it."""
    if not isinstance(question, str):
        raise InvalidQuestion(f"question must be text, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise InvalidQuestion("question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestion(f"question is too long: {len(text)} characters, at most {MAX_QUESTION_CHARS}")
    # Control characters (other than newline/tab) mean binary data was pasted
    # or sent by mistake; a model would treat it as noise or worse.
    bad = [c for c in text if unicodedata.category(c) in ("Cc", "Cs", "Co") and c not in "\n\t\r"]
    if bad:
        raise InvalidQuestion(f"question must be plain text: found {len(bad)} control/binary character(s)")
    return text


def validate_image(image: object) -> np.ndarray | None:
    """The image unchanged when it is RGB H×W×3 uint8 (or None), else `InvalidImage`."""
    if image is None:
        return None
    try:
        return check_rgb_image(image, what="image", min_side=1, layout="H×W×3 RGB")
    except ImageCheckError as e:  # InvalidImage is also a VlmError, which the dialogue code catches
        raise InvalidImage(str(e)) from None


@dataclass(frozen=True)
class AskRequest:
    """One question about one frame.

    `measurements` holds numbers computed elsewhere (telehealth fills them from
    a wound analysis); backends must only quote them, never invent them.
    Validation happens at construction so a bad request fails before it queues.
    """

    question: str
    image: np.ndarray | None = None
    findings: FrameFindings | None = None
    measurements: Measurements = NO_MEASUREMENTS
    history: tuple[Turn, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "question", validate_question(self.question))
        validate_image(self.image)
        turns = tuple(t if isinstance(t, Turn) else Turn(*t) for t in self.history)
        # Keep only the most recent turns: the newest context matters most.
        object.__setattr__(self, "history", turns[-MAX_HISTORY_TURNS:])


@dataclass(frozen=True)
class ReportContext:
    """What a report draft is built from: findings over one or more evidence frames."""

    findings: tuple[FrameFindings, ...] = ()
    measurements: Measurements = NO_MEASUREMENTS
    # Frame references (e.g. "session-12/frame-3021") the clinician can open to check.
    evidence_frames: tuple[str, ...] = ()
    image: np.ndarray | None = None
    notes: str = ""  # clinician's free text to take into account (no identifiers)

    def __post_init__(self) -> None:
        validate_image(self.image)
        if isinstance(self.findings, FrameFindings):
            object.__setattr__(self, "findings", (self.findings,))
        object.__setattr__(self, "findings", tuple(self.findings))


@runtime_checkable
class VlmBackend(Protocol):
    """A model that answers questions about a frame and drafts reports.

    `answer` is an async generator: text pieces in order. Stopping the
    iteration (``aclose()``, break, or cancelling the consuming task) must stop
    generation so a GPU is not kept busy for a reader who left.
    """

    @property
    def info(self) -> VlmInfo: ...

    def answer(self, request: AskRequest) -> AsyncGenerator[str, None]: ...

    async def draft_report(self, context: ReportContext) -> ReportDraft: ...

    async def aclose(self) -> None: ...


async def collect(pieces: AsyncIterator[str]) -> str:
    """The whole answer from a stream; a convenience for reports, tests and eval."""
    out = []
    async for piece in pieces:
        out.append(piece)
    return "".join(out)
