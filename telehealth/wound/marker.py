"""Find the ArUco scale marker in a photo and turn it into millimetres per pixel."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from telehealth.wound.models import (
    NOT_MEASURED_NO_MARKER,
    NOT_MEASURED_SMALL,
    NOT_MEASURED_STEEP,
    MarkerObservation,
    Scale,
)

DEFAULT_DICTIONARY = "DICT_4X4_50"
DEFAULT_MARKER_MM = 20.0


@dataclass(frozen=True)
class MarkerPolicy:
    """When a detected marker is trusted for scale."""

    marker_mm: float = DEFAULT_MARKER_MM
    dictionary: str = DEFAULT_DICTIONARY
    # Longest/shortest side above this means the marker plane is tilted by more
    # than ~37 degrees: one axis is foreshortened and a single scale is wrong.
    max_side_ratio: float = 1.25
    # Below this the corner localisation error (~0.5 px) exceeds ~2.5% of the side.
    min_side_px: float = 20.0


def aruco_dictionary(name: str) -> cv2.aruco.Dictionary:
    try:
        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))
    except AttributeError:
        raise ValueError(f"unknown ArUco dictionary {name!r}") from None


def _detector(dictionary: str) -> cv2.aruco.ArucoDetector:
    params = cv2.aruco.DetectorParameters()
    # Sub-pixel corners: the whole measurement scales with the side length.
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    return cv2.aruco.ArucoDetector(aruco_dictionary(dictionary), params)


def _observation(corners: np.ndarray, marker_id: int, policy: MarkerPolicy) -> MarkerObservation:
    pts = corners.reshape(4, 2).astype(np.float64)
    sides = [float(np.linalg.norm(pts[(i + 1) % 4] - pts[i])) for i in range(4)]
    return MarkerObservation(
        marker_id=int(marker_id),
        dictionary=policy.dictionary,
        marker_mm=policy.marker_mm,
        corners_px=[(float(x), float(y)) for x, y in pts],
        sides_px=sides,
        mean_side_px=float(np.mean(sides)),
        side_ratio=float(max(sides) / max(min(sides), 1e-9)),
    )


def detect_scale(rgb: np.ndarray, policy: MarkerPolicy | None = None) -> Scale:
    """Scale of the photo from the largest marker found; refused with a reason when untrustworthy."""
    policy = policy or MarkerPolicy()
    if policy.marker_mm <= 0:
        raise ValueError(f"marker size must be positive, got {policy.marker_mm} mm")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    corners, ids, _ = _detector(policy.dictionary).detectMarkers(gray)
    if ids is None or len(ids) == 0:
        return Scale(status="not_measured", reason=NOT_MEASURED_NO_MARKER)
    found = [_observation(c, int(i), policy) for c, i in zip(corners, ids.ravel())]
    # The largest marker is the closest / best resolved one; others are ignored
    # rather than averaged because they may lie in a different plane.
    best = max(found, key=lambda m: m.mean_side_px)
    if best.side_ratio > policy.max_side_ratio:
        return Scale(
            status="not_measured",
            reason=f"{NOT_MEASURED_STEEP} (side ratio {best.side_ratio:.2f} > {policy.max_side_ratio:.2f})",
            marker=best,
            markers_found=len(found),
        )
    if best.mean_side_px < policy.min_side_px:
        return Scale(
            status="not_measured",
            reason=f"{NOT_MEASURED_SMALL} ({best.mean_side_px:.0f} px < {policy.min_side_px:.0f} px)",
            marker=best,
            markers_found=len(found),
        )
    return Scale(
        status="measured",
        mm_per_px=policy.marker_mm / best.mean_side_px,
        marker=best,
        markers_found=len(found),
    )


def marker_polygon(scale: Scale) -> np.ndarray | None:
    """Marker corners as an int32 polygon for drawing/masking, or None."""
    if scale.marker is None:
        return None
    return np.round(np.asarray(scale.marker.corners_px)).astype(np.int32)
