"""Size of a wound mask: area, length/width, perimeter; pixels first, then physical units."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from telehealth.wound.models import Measurement, Scale


@dataclass(frozen=True)
class PixelGeometry:
    """Wound size in pixels (the physical numbers are these times the scale)."""

    area_px: float
    perimeter_px: float
    length_px: float  # maximum Feret diameter
    width_px: float  # extent perpendicular to the length direction
    length_axis: tuple[tuple[float, float], tuple[float, float]]  # end points of the length
    width_axis: tuple[tuple[float, float], tuple[float, float]]
    min_rect_px: tuple[float, float]  # (long, short) sides of the minimum-area rectangle
    regions: int


def as_bool_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Accept bool, 0/1 or 0/255 masks of exactly the photo's height x width."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.shape != shape:
        raise ValueError(f"wound mask shape {m.shape} does not match the photo {shape}")
    return m.astype(bool) if m.dtype == bool else m > (127 if m.max(initial=0) > 1 else 0)


def clean_mask(mask: np.ndarray, min_fraction_of_largest: float = 0.02, min_px: int = 16) -> np.ndarray:
    """Drop specks: a few stray pixels would add regions and inflate the perimeter."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep_min = max(min_px, min_fraction_of_largest * areas.max())
    keep = np.zeros(n, bool)
    keep[1:] = areas >= keep_min
    return keep[labels]


def _contours(mask: np.ndarray) -> list[np.ndarray]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return list(contours)


def _perimeter(contour: np.ndarray) -> float:
    # The raw 8-connected pixel chain overestimates curved edges (staircase);
    # a 1-px polygon simplification follows the true edge to well under 1%.
    poly = cv2.approxPolyDP(contour, 1.0, True)
    if len(poly) < 3:
        return float(cv2.arcLength(contour, True))
    return float(cv2.arcLength(poly, True))


def pixel_geometry(mask: np.ndarray) -> PixelGeometry | None:
    """Geometry of all wound regions together; None for an empty mask."""
    contours = _contours(mask)
    if not contours:
        return None
    pts = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    # Max Feret diameter: the farthest pair of hull points (hulls are small, O(n^2) is fine).
    d = np.linalg.norm(hull[:, None, :] - hull[None, :, :], axis=2)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    a, b = hull[i], hull[j]
    u = (b - a) / max(float(np.linalg.norm(b - a)), 1e-9)
    v = np.array([-u[1], u[0]])
    proj = hull @ v
    lo, hi = int(np.argmin(proj)), int(np.argmax(proj))
    # Perpendicular width measured across the whole hull; its end points drawn through the length midpoint.
    mid = (a + b) / 2
    w_lo = mid + v * (proj[lo] - mid @ v)
    w_hi = mid + v * (proj[hi] - mid @ v)
    # Contours run through boundary pixel centres, half a pixel inside the edge on each side.
    length = float(d[i, j]) + 1.0
    width = float(proj[hi] - proj[lo]) + 1.0
    (_, _), (rw, rh), _ = cv2.minAreaRect(pts.astype(np.float32))
    return PixelGeometry(
        area_px=float(np.count_nonzero(mask)),
        perimeter_px=sum(_perimeter(c) for c in contours),
        length_px=length,
        width_px=width,
        length_axis=((float(a[0]), float(a[1])), (float(b[0]), float(b[1]))),
        width_axis=((float(w_lo[0]), float(w_lo[1])), (float(w_hi[0]), float(w_hi[1]))),
        min_rect_px=(float(max(rw, rh)) + 1.0, float(min(rw, rh)) + 1.0),
        regions=len(contours),
    )


def measure(geometry: PixelGeometry | None, scale: Scale, no_wound_reason: str) -> Measurement:
    """Physical measurement, or an explicit 'not measured' carrying no numbers."""
    if geometry is None:
        return Measurement(status="not_measured", reason=no_wound_reason)
    if scale.status != "measured" or scale.mm_per_px is None:
        return Measurement(status="not_measured", reason=scale.reason, regions=geometry.regions)
    cm = scale.mm_per_px / 10.0
    return Measurement(
        status="measured",
        area_cm2=geometry.area_px * cm * cm,
        length_cm=geometry.length_px * cm,
        width_cm=geometry.width_px * cm,
        perimeter_cm=geometry.perimeter_px * cm,
        min_rect_length_cm=geometry.min_rect_px[0] * cm,
        min_rect_width_cm=geometry.min_rect_px[1] * cm,
        regions=geometry.regions,
    )
