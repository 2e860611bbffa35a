"""Evidence image: the photo with wound outline, marker outline and measurement text (PNG)."""

from __future__ import annotations

import cv2
import numpy as np

from telehealth.wound.geometry import PixelGeometry
from telehealth.wound.models import Evidence, Measurement, Scale

WOUND_RGB = (0, 255, 0)
MARKER_RGB = (0, 200, 255)
AXIS_RGB = (255, 255, 0)
MAX_SIDE = 2048  # evidence is for review on screen; full 12 MP photos would bloat every record


def summary_lines(measurement: Measurement, scale: Scale) -> list[str]:
    """Short ASCII lines (OpenCV fonts have no superscripts or non-ASCII)."""
    if measurement.status != "measured":
        return [(measurement.reason or "not measured")[:90]]
    lines = [
        f"Area {measurement.area_cm2:.2f} cm2",
        f"L {measurement.length_cm:.2f} x W {measurement.width_cm:.2f} cm",
        f"Perimeter {measurement.perimeter_cm:.2f} cm",
    ]
    if scale.marker is not None:
        lines.append(f"Scale: marker {scale.marker.marker_id}, {scale.marker.marker_mm:g} mm")
    return lines


def render_evidence(
    rgb: np.ndarray,
    mask: np.ndarray,
    scale: Scale,
    measurement: Measurement,
    geometry: PixelGeometry | None,
    model_label: str,
) -> Evidence:
    h, w = rgb.shape[:2]
    k = min(1.0, MAX_SIDE / max(h, w))
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    m: np.ndarray = mask.astype(np.uint8)
    if k < 1.0:
        img = cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        m = cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
    thick = max(2, round(max(img.shape[:2]) / 400))

    def bgr(c: tuple[int, int, int]) -> tuple[int, int, int]:
        return (c[2], c[1], c[0])

    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(img, contours, -1, bgr(WOUND_RGB), thick, cv2.LINE_AA)
    if scale.marker is not None:
        poly = np.round(np.asarray(scale.marker.corners_px) * k).astype(np.int32)
        cv2.polylines(img, [poly], True, bgr(MARKER_RGB), thick, cv2.LINE_AA)
    if geometry is not None and measurement.status == "measured":
        for axis in (geometry.length_axis, geometry.width_axis):
            p0 = tuple(round(v * k) for v in axis[0])
            p1 = tuple(round(v * k) for v in axis[1])
            cv2.line(img, p0, p1, bgr(AXIS_RGB), max(1, thick // 2), cv2.LINE_AA)

    lines = summary_lines(measurement, scale) + [f"Model: {model_label}"[:90]]
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, max(0.5, img.shape[1] / 1400)
    lh = round(30 * fs) + 6
    box_w = max(cv2.getTextSize(t, font, fs, 1)[0][0] for t in lines) + 16
    # Darkened panel behind the text so it stays readable on any photo.
    panel = img[: lh * len(lines) + 10, :box_w]
    panel[:] = (panel * 0.35).astype(np.uint8)
    for i, t in enumerate(lines):
        cv2.putText(img, t, (8, lh * (i + 1)), font, fs, (255, 255, 255), max(1, round(fs * 1.5)), cv2.LINE_AA)
    ok, png = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover - imencode fails only on invalid input
        raise RuntimeError("could not encode the evidence image")
    return Evidence(overlay_png=png.tobytes(), width=img.shape[1], height=img.shape[0])
