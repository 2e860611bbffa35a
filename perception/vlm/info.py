"""Which model answered: the identity every answer and report draft carries.

Its own module because both the backend interface (``base``) and the report
drafts (``report``) need it, and ``base`` names ``ReportDraft`` in its interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BackendKind = Literal["grounded", "transformers", "openai"]


@dataclass(frozen=True)
class VlmInfo:
    """Identity of the answering model; goes into every report draft for audit."""

    name: str
    version: str
    backend: BackendKind
