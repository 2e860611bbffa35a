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


# A measurement's key ends in its unit (wound_area_cm2): the line a clinician reads puts the unit after the value.
_UNIT_SUFFIXES = (("_cm2", "cm²"), ("_cm", "cm"), ("_mm", "mm"), ("_pct", "%"))


def measurement_line(key: str, value: Any) -> str:
    """ "Wound area: 4.42 cm²" for ("wound_area_cm2", 4.42); keys without a unit keep their words."""
    name, unit = key, ""
    for suffix, shown in _UNIT_SUFFIXES:
        if key.endswith(suffix):
            name, unit = key[: -len(suffix)], shown
            break
    text = format_measurement_value(value)
    label = name.replace("_", " ").strip().capitalize()
    return f"{label}: {text}{(' ' + unit) if unit and isinstance(value, (int, float)) else ''}"
