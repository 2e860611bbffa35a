"""Boxes in words: where a finding is, how large, how far from another.

Shared by the prompt builder (facts for an LLM) and the grounded answerer
(answers without an LLM), so both describe a frame the same way.
"""

from __future__ import annotations

import math

from perception.findings import Finding, FrameFindings

Box = tuple[int, int, int, int]


def centre(box: Box) -> tuple[float, float]:
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0


def region_parts(box: Box, frame_size: tuple[int, int]) -> tuple[str, str]:
    """(vertical, horizontal) thirds of the frame holding the box centre: ("upper"|"middle"|"lower", "left"|"centre"|"right")."""
    w, h = frame_size
    cx, cy = centre(box)
    fx, fy = cx / max(w, 1), cy / max(h, 1)
    vert = "upper" if fy < 1 / 3 else "lower" if fy > 2 / 3 else "middle"
    horiz = "left" if fx < 1 / 3 else "right" if fx > 2 / 3 else "centre"
    return vert, horiz


def region_words(box: Box, frame_size: tuple[int, int]) -> str:
    """E.g. "upper left", "lower centre", "centre" (middle row, centre column)."""
    vert, horiz = region_parts(box, frame_size)
    if vert == "middle" and horiz == "centre":
        return "centre"
    if vert == "middle":
        return f"middle {horiz}"
    return f"{vert} {horiz}"


def area_fraction(finding: Finding, frame_size: tuple[int, int]) -> float:
    """Share of the frame covered by the finding (mask area when known, else its box)."""
    w, h = frame_size
    if w <= 0 or h <= 0:
        return 0.0
    area = finding.area_px
    if area <= 0:
        x0, y0, x1, y1 = finding.box
        area = max(0, x1 - x0) * max(0, y1 - y0)
    return min(1.0, area / float(w * h))


def box_gap_px(a: Box, b: Box) -> float:
    """Shortest distance between two boxes in pixels; 0 when they touch or overlap."""
    dx = max(0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0, max(a[1], b[1]) - min(a[3], b[3]))
    return math.hypot(dx, dy)


def percent(frac: float) -> str:
    """A fraction as a short percentage; small values keep one decimal so they do not read as 0%."""
    pct = 100.0 * frac
    return f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%"


def describe_finding(f: Finding, frame: FrameFindings) -> str:
    """One line of fact about a finding: label, confidence, where, size, track."""
    track = f", track #{f.track_id}" if f.track_id is not None else ""
    x0, y0, x1, y1 = f.box
    return (
        f"{f.label} (confidence {f.score:.2f}) in the {region_words(f.box, frame.frame_size)} of the frame, "
        f"covering about {percent(area_fraction(f, frame.frame_size))} of it, box x {x0}-{x1}, y {y0}-{y1} px{track}"
    )
