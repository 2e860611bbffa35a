"""Periwound redness: a* (CIELAB red-green) in a ring around the wound vs skin farther out."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from telehealth.wound.colour import rgb_to_lab
from telehealth.wound.models import PeriwoundRedness

REDNESS_LIMITS = [
    "Not validated against clinician assessment of erythema.",
    "On darker skin erythema changes a* much less, so the index under-reads redness.",
    "Lighting, shadows and camera white balance shift a*; the reference ring compensates only partly.",
    "The reference ring is assumed to be intact skin: dressings, bedding or other body parts there distort it.",
]


@dataclass(frozen=True)
class RednessRings:
    """Ring geometry: distances from the wound edge. mm when the scale is known, else px."""

    ring_mm: tuple[float, float] = (0.0, 10.0)
    reference_mm: tuple[float, float] = (20.0, 30.0)
    # Without a scale: a fraction of the photo's long side, so it follows resolution.
    ring_frac: tuple[float, float] = (0.0, 0.02)
    reference_frac: tuple[float, float] = (0.04, 0.06)
    min_px: int = 10  # outer ring width never below this many pixels
    threshold: float = 8.0  # a* units of ring over reference that count as "red"
    min_pixels: int = 200  # fewer valid pixels in a ring -> not measured
    # Shadow and specular glare carry no skin colour.
    min_l: float = 15.0
    max_l: float = 97.0

    def describe(self) -> str:
        return (
            "index = mean CIELAB a* in a ring around the wound edge minus mean a* in a reference "
            "ring of skin farther out (positive = redder than surrounding skin); pixels of the wound, "
            f"the scale marker, shadows (L*<{self.min_l:g}) and glare (L*>{self.max_l:g}) are excluded; "
            f"above {self.threshold:g} counts as periwound redness."
        )


def _band(dist: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (dist > lo) & (dist <= hi)


def periwound_redness(
    rgb: np.ndarray,
    mask: np.ndarray,
    mm_per_px: float | None,
    *,
    exclude: np.ndarray | None = None,
    rings: RednessRings | None = None,
) -> PeriwoundRedness | None:
    """Redness index, or a 'not measured' result when a ring has too little skin; None for an empty mask."""
    rings = rings or RednessRings()
    if not mask.any():
        return None
    if mm_per_px:
        unit, ring, ref = "mm", rings.ring_mm, rings.reference_mm
        to_px = 1.0 / mm_per_px
    else:
        unit = "px"
        # Small photos: grow the base length so the ring is at least min_px wide.
        base = max(max(rgb.shape[:2]), rings.min_px / rings.ring_frac[1])
        ring = (rings.ring_frac[0] * base, rings.ring_frac[1] * base)
        ref = (rings.reference_frac[0] * base, rings.reference_frac[1] * base)
        to_px = 1.0
    # Euclidean distance to the wound gives round rings of exact width (dilation with a square would not).
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    lab = rgb_to_lab(rgb)
    valid = ~mask & (lab[..., 0] >= rings.min_l) & (lab[..., 0] <= rings.max_l)
    if exclude is not None:
        valid &= ~exclude
    ring_px = valid & _band(dist, ring[0] * to_px, max(ring[1] * to_px, 1.0))
    ref_px = valid & _band(dist, ref[0] * to_px, ref[1] * to_px)
    common = dict(
        ring=(float(ring[0]), float(ring[1])),
        reference=(float(ref[0]), float(ref[1])),
        unit=unit,
        threshold=rings.threshold,
        method=rings.describe(),
        limits=list(REDNESS_LIMITS),
    )
    n_ring, n_ref = int(ring_px.sum()), int(ref_px.sum())
    if n_ring < rings.min_pixels or n_ref < rings.min_pixels:
        return PeriwoundRedness(
            status="not_measured",
            reason=(
                f"not measured: too little skin around the wound in the photo (ring {n_ring} px, reference {n_ref} px)"
            ),
            **common,
        )
    a = lab[..., 1]
    ring_a, ref_a = float(a[ring_px].mean()), float(a[ref_px].mean())
    index = ring_a - ref_a
    return PeriwoundRedness(
        status="measured",
        index=index,
        ring_mean_a=ring_a,
        reference_mean_a=ref_a,
        above_threshold=index > rings.threshold,
        **common,
    )
