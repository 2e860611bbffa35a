"""Draw findings, a status banner and a latency readout onto a BGR frame, in place.

Kept cheap for 720p30 on a CPU: translucent fills are blended only inside each
object's bounding box, never over the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from overlay.palette import (
    STATUS_CONTENT_BGR,
    STATUS_OK_BGR,
    STATUS_UNAVAILABLE_BGR,
    TEXT_BGR,
    colour_for_label,
)
from perception.findings import FrameFindings
from perception.vlm.clinical_words import finding_name

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FILL_ALPHA = 0.35


@dataclass(frozen=True)
class OverlayState:
    """Everything the overlay shows on one outgoing frame.

    `findings` may come from an earlier frame than the one drawn on; `opacity`
    (0..1) fades them out as they age. `ai_available` False shows the red
    banner with `status_text` and draws no findings; with `content_paused` the
    banner is amber instead (the AI works, the content is not what the model
    knows, so nothing is drawn).
    """

    findings: FrameFindings | None
    opacity: float = 1.0
    ai_available: bool = True
    status_text: str = ""
    latency_text: str = ""
    content_paused: bool = False


def draw_overlay(frame_bgr: npt.NDArray[np.uint8], state: OverlayState) -> npt.NDArray[np.uint8]:
    """Draw `state` onto `frame_bgr` (H x W x 3 uint8, modified in place) and return it.

    Findings are scaled from the size the model saw to this frame's size.
    """
    if state.ai_available and state.findings is not None and state.opacity > 0.02:
        _draw_findings(frame_bgr, state.findings, state.opacity)
    _draw_banner(frame_bgr, state)
    return frame_bgr


def _draw_findings(frame: npt.NDArray[np.uint8], findings: FrameFindings, opacity: float) -> None:
    height, width = frame.shape[:2]
    src_w, src_h = findings.frame_size
    sx = width / src_w if src_w else 1.0
    sy = height / src_h if src_h else 1.0
    thickness = max(2, round(min(width, height) / 360))
    font_scale = max(0.45, min(width, height) / 1200)
    for obj in findings.objects:
        colour = colour_for_label(obj.label)
        x0, y0, x1, y1 = obj.box
        x0, x1 = _clip(round(x0 * sx), width), _clip(round(x1 * sx), width)
        y0, y1 = _clip(round(y0 * sy), height), _clip(round(y1 * sy), height)
        if x1 <= x0 or y1 <= y0:
            continue
        polygons = [
            (np.asarray(poly, dtype=np.float32) * (sx, sy)).round().astype(np.int32)
            for poly in obj.outline
            if len(poly) >= 3
        ]
        if polygons:
            _blend_fill(frame, polygons, colour, (x0, y0, x1, y1), _FILL_ALPHA * opacity)
            cv2.polylines(frame, polygons, True, _fade(colour, opacity), thickness, cv2.LINE_AA)
        cv2.rectangle(frame, (x0, y0), (x1 - 1, y1 - 1), _fade(colour, opacity), thickness)
        tag = finding_name(obj)  # the name the panel and the answers use: 'polyp 3'
        _label(frame, tag, (x0, y0), colour, font_scale)


def _blend_fill(
    frame: npt.NDArray[np.uint8],
    polygons: list[npt.NDArray[np.int32]],
    colour: tuple[int, int, int],
    box: tuple[int, int, int, int],
    alpha: float,
) -> None:
    x0, y0, x1, y1 = box
    roi = frame[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [p - (x0, y0) for p in polygons], 255)
    # Blend the whole box in C, then copy back only the pixels inside the outline:
    # boolean-mask indexing in numpy cost several ms per object at 720p.
    tinted = cv2.addWeighted(roi, 1.0 - alpha, np.full_like(roi, colour), alpha, 0.0)
    cv2.copyTo(tinted, mask, roi)


def _fade(colour: tuple[int, int, int], opacity: float) -> tuple[int, int, int]:
    # Fading lines to dark grey reads as "old" without a per-pixel blend of the whole frame.
    blue, green, red = (int(c * opacity + 60 * (1.0 - opacity)) for c in colour)
    return blue, green, red


def _label(
    frame: npt.NDArray[np.uint8], text: str, origin: tuple[int, int], colour: tuple[int, int, int], scale: float
) -> None:
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    x, y = origin
    y = max(y, th + base + 2)
    cv2.rectangle(frame, (x, y - th - base - 2), (x + tw + 4, y), colour, cv2.FILLED)
    cv2.putText(frame, text, (x + 2, y - base), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _draw_banner(frame: npt.NDArray[np.uint8], state: OverlayState) -> None:
    height, width = frame.shape[:2]
    scale = max(0.5, min(width, height) / 900)
    pad = max(4, round(scale * 8))
    if not state.ai_available:
        if state.content_paused:
            text, colour, ink = state.status_text or "content not recognised", STATUS_CONTENT_BGR, (0, 0, 0)
            text = text[:1].upper() + text[1:]
        else:
            text = "AI unavailable" + (f": {state.status_text}" if state.status_text else "")
            colour, ink = STATUS_UNAVAILABLE_BGR, TEXT_BGR
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, 2)
        bar_h = th + base + 2 * pad
        cv2.rectangle(frame, (0, 0), (width, bar_h), colour, cv2.FILLED)
        cv2.putText(frame, text, (pad, pad + th), _FONT, scale, ink, 2, cv2.LINE_AA)
    else:
        # A small green dot: AI is live. The surgeon should never have to guess.
        radius = max(5, round(scale * 8))
        cv2.circle(frame, (width - pad - radius, pad + radius), radius, STATUS_OK_BGR, cv2.FILLED)
    if state.latency_text:
        small = scale * 0.75
        (tw, th), base = cv2.getTextSize(state.latency_text, _FONT, small, 1)
        x, y = width - tw - 2 * pad, height - pad
        cv2.rectangle(frame, (x - pad, y - th - pad), (width, height), (0, 0, 0), cv2.FILLED)
        cv2.putText(frame, state.latency_text, (x, y), _FONT, small, TEXT_BGR, 1, cv2.LINE_AA)


def _clip(value: int, upper: int) -> int:
    return max(0, min(upper, value))
