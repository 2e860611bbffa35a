"""Vision-language dialogue about the live frame, and report drafts a clinician signs.

Backends (all implement `VlmBackend`): `grounded` (default, answers from
findings only), `transformers` (local image-text-to-text checkpoint) and
`openai` (any OpenAI-compatible server). Build one with `create_vlm`.
Heavy imports (torch, httpx) happen only in the backend modules.
"""

from perception.vlm.base import (
    AskRequest,
    InvalidImage,
    InvalidQuestion,
    ReportContext,
    Turn,
    VlmBackend,
    VlmBusy,
    VlmError,
    VlmInfo,
    VlmUnavailable,
    collect,
)
from perception.vlm.measurements import Measurements, TissueMix
from perception.vlm.report import ReportDraft, parse_sections, render_text

__all__ = [
    "AskRequest",
    "InvalidImage",
    "InvalidQuestion",
    "Measurements",
    "ReportContext",
    "ReportDraft",
    "Turn",
    "VlmBackend",
    "VlmBusy",
    "VlmError",
    "VlmInfo",
    "VlmUnavailable",
    "collect",
    "parse_sections",
    "render_text",
    "TissueMix",
]
