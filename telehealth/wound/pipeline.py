"""One wound photo in, one ``WoundAnalysis`` out."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import cv2
import numpy as np

from perception.image_check import check_rgb_image
from telehealth.wound.colour_reference import marker_colour_reference
from telehealth.wound.evidence import render_evidence
from telehealth.wound.geometry import as_bool_mask, clean_mask, measure, pixel_geometry
from telehealth.wound.marker import DEFAULT_MARKER_MM, MarkerPolicy, detect_scale, marker_polygon
from telehealth.wound.models import (
    NOT_MEASURED_NO_WOUND,
    ModelRef,
    PreviousMeasurement,
    WoundAnalysis,
)
from telehealth.wound.redness import RednessRings, periwound_redness
from telehealth.wound.risk import RiskThresholds, assess_infection_risk
from telehealth.wound.segmentation import Segmenter
from telehealth.wound.tissue import TissueRules, tissue_composition

# Only timings and statuses are logged: never pixel values, measurements or identifiers.
log = logging.getLogger(__name__)


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _marker_mask(shape: tuple[int, int], poly: np.ndarray | None, grow_px: int) -> np.ndarray | None:
    """Marker area plus its white margin: neither is wound nor skin."""
    if poly is None:
        return None
    m: np.ndarray = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [poly], 1)
    if grow_px > 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1, 2 * grow_px + 1)))
    return m.astype(bool)


def analyse_wound_photo(
    rgb: np.ndarray,
    segment: Segmenter,
    *,
    marker_mm: float = DEFAULT_MARKER_MM,
    previous: PreviousMeasurement | None = None,
    marker_policy: MarkerPolicy | None = None,
    tissue_rules: TissueRules | None = None,
    redness_rings: RednessRings | None = None,
    risk_thresholds: RiskThresholds | None = None,
    now: datetime | None = None,
) -> WoundAnalysis:
    """Segment, scale, measure, classify tissue, check periwound redness and flag risk signals.

    ``rgb`` is the photo with EXIF orientation already applied. ``marker_mm`` is
    the printed side of the ArUco marker's black square (``marker_policy``
    overrides it when given).
    """
    t0 = time.perf_counter()
    check_rgb_image(rgb, what="photo", min_side=16)
    h, w = rgb.shape[:2]
    segmented = segment(rgb)
    mask = clean_mask(as_bool_mask(segmented.mask, (h, w)))
    model_name, model_version = segmented.model.name, segmented.model.version
    warnings: list[str] = []

    policy = marker_policy or MarkerPolicy(marker_mm=marker_mm)
    scale = detect_scale(rgb, policy)
    grow = round(0.5 * scale.marker.mean_side_px) if scale.marker else 0
    marker_area = _marker_mask((h, w), marker_polygon(scale), grow)
    if marker_area is not None and (mask & marker_area).any():
        # A marker counted as wound would add its area; the marker is never wound.
        mask &= ~marker_area
        mask = clean_mask(mask)
        warnings.append("the wound mask touched the scale marker; marker pixels were removed from the wound")

    geometry = pixel_geometry(mask)
    measurement = measure(geometry, scale, NOT_MEASURED_NO_WOUND)
    tissue, tissue_not_assessed = None, None
    if geometry is not None:
        reference = marker_colour_reference(rgb, scale.marker)
        if isinstance(reference, str):
            tissue_not_assessed = reference
        else:
            tissue = tissue_composition(rgb, mask, tissue_rules, reference)
    redness = periwound_redness(rgb, mask, scale.mm_per_px, exclude=marker_area, rings=redness_rings)
    risk = assess_infection_risk(measurement, tissue, redness, previous, risk_thresholds, tissue_not_assessed)
    if scale.status == "measured" and geometry is not None:
        warnings.append("the scale holds only if the marker lies in the wound's plane at the same distance")
    evidence = render_evidence(rgb, mask, scale, measurement, geometry, f"{model_name} {model_version}")

    result = WoundAnalysis(
        analysed_at=now or datetime.now(timezone.utc),
        model=ModelRef(name=model_name, version=model_version),
        image_size=(w, h),
        wound_found=geometry is not None,
        wound_pixels=int(mask.sum()),
        wound_box=_box(mask),
        wound_score=segmented.score if geometry is not None else None,
        scale=scale,
        measurement=measurement,
        tissue=tissue,
        tissue_not_assessed=tissue_not_assessed,
        redness=redness,
        risk=risk,
        evidence=evidence,
        warnings=warnings,
    )
    log.info("wound analysis: %dx%d photo, scale %s, %.0f ms", w, h, scale.status, (time.perf_counter() - t0) * 1000)
    return result
