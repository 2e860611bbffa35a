"""How measurement values read in text.

Shared by the prompts, the grounded answerer and the report drafts; kept apart
from ``prompts`` (which needs the request types of ``base``) so that ``report``
can use it without an import circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_measurement_value(value: Any) -> str:
    """Numbers rounded for reading; a mapping of shares (tissue mix) as percentages."""
    if isinstance(value, Mapping):
        parts = []
        for k, v in value.items():
            if isinstance(v, (int, float)) and 0 <= v <= 1:
                parts.append(f"{k} {100 * v:.0f}%")
            else:
                parts.append(f"{k} {format_measurement_value(v)}")
        return ", ".join(parts)
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)
