"""Tissue mix, periwound redness and the infection-risk flag on painted synthetic wounds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from wound_synth import BLACK, RED, REDDENED, YELLOW, ellipse_mask, paint, place_marker, skin_photo

from telehealth.wound import (
    CLINICAL_REVIEW_NOTE,
    Measurement,
    PreviousMeasurement,
    analyse_wound_photo,
    assess_infection_risk,
    fixed_mask_segmenter,
    periwound_redness,
    tissue_composition,
)
from telehealth.wound.colour_reference import NOT_ASSESSED_NO_MARKER, NOT_ASSESSED_OVEREXPOSED

H, W = 480, 640


def painted_wound(
    parts: dict[tuple[int, int, int], float], *, red_ring: bool = False, marker: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Wound split left-to-right into colour bands with exact pixel fractions."""
    img = skin_photo(W, H, seed)
    mask = ellipse_mask((H, W), (260, 260), (120, 80), angle=15)
    if red_ring:
        dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
        ring = (dist > 0) & (dist <= 22)
        paint(img, ring, REDDENED, seed=seed + 5)
    ys, xs = np.nonzero(mask)
    order = np.argsort(xs, kind="stable")
    start = 0
    for k, (colour, frac) in enumerate(parts.items()):
        n = round(frac * len(order))
        sel = order[start : start + n]
        m = np.zeros_like(mask)
        m[ys[sel], xs[sel]] = True
        paint(img, m, colour, seed=seed + 10 + k)
        start += n
    if marker:
        place_marker(img, (560, 80), 80.0)
    return img, mask


def test_tissue_fractions_match_painted_regions():
    img, mask = painted_wound({RED: 0.6, YELLOW: 0.3, BLACK: 0.1})
    t = tissue_composition(img, mask)
    assert t.granulation == pytest.approx(0.6, abs=0.03)
    assert t.slough == pytest.approx(0.3, abs=0.03)
    assert t.necrotic == pytest.approx(0.1, abs=0.03)
    assert t.granulation + t.slough + t.necrotic + t.unclassified == pytest.approx(1.0)
    assert t.pixels == mask.sum()
    assert "CIELAB" in t.method and any("marker's white and black" in s for s in t.limits)
    assert any("not validated" in s.lower() for s in t.limits)


@pytest.mark.parametrize(
    "colour,field",
    [
        ((240, 238, 228), "slough"),
        ((70, 45, 30), "necrotic"),
        ((150, 50, 60), "granulation"),
        ((40, 90, 200), "unclassified"),
    ],
)
def test_single_colours(colour, field):
    img = np.zeros((40, 40, 3), np.uint8)
    img[:] = colour
    t = tissue_composition(img, np.ones((40, 40), bool))
    assert getattr(t, field) == pytest.approx(1.0)


def test_redness_higher_for_reddened_ring():
    img_n, mask = painted_wound({RED: 1.0})
    img_r, _ = painted_wound({RED: 1.0}, red_ring=True)
    normal = periwound_redness(img_n, mask, None)
    red = periwound_redness(img_r, mask, None)
    assert normal.status == red.status == "measured" and normal.unit == "px"
    assert abs(normal.index) < 3.0 and not normal.above_threshold
    assert red.index > normal.index + 10 and red.above_threshold
    assert red.ring_mean_a > red.reference_mean_a
    assert "a*" in red.method and any("darker skin" in s for s in red.limits)
    # With a scale the rings are in mm.
    mm = periwound_redness(img_r, mask, 0.25)
    assert mm.unit == "mm" and mm.ring == (0.0, 10.0) and mm.index > 8


def test_redness_not_measured_without_skin_around():
    img = np.zeros((100, 100, 3), np.uint8)
    img[:] = RED
    mask = np.ones((100, 100), bool)
    mask[:2] = False
    r = periwound_redness(img, mask, None)
    assert r.status == "not_measured" and r.index is None and "too little skin" in r.reason


def test_infection_flag_lists_the_right_reasons():
    img, mask = painted_wound({RED: 0.3, YELLOW: 0.3, BLACK: 0.4}, red_ring=True)
    prev = PreviousMeasurement(area_cm2=4.0)
    r = analyse_wound_photo(img, fixed_mask_segmenter(mask), marker_mm=20.0, previous=prev)
    assert r.measurement.status == "measured"  # 120*80*pi px at 0.25 mm/px = 18.8 cm2 > 4 cm2
    codes = {s.code for s in r.risk.signals}
    assert codes == {"periwound_redness", "necrotic_tissue", "nonviable_tissue", "area_increase"}
    assert r.risk.flagged and r.risk.note == CLINICAL_REVIEW_NOTE
    for s in r.risk.signals:
        assert s.value is not None and s.threshold is not None and s.description


def test_healthy_wound_not_flagged():
    img, mask = painted_wound({RED: 0.9, YELLOW: 0.1})
    r = analyse_wound_photo(img, fixed_mask_segmenter(mask), previous=PreviousMeasurement(area_cm2=25.0))
    assert not r.risk.flagged and r.risk.signals == []
    assert r.risk.not_evaluated == []


def test_area_signal_not_evaluated_without_measurements():
    m = Measurement(status="not_measured", reason="not measured: no scale marker in the photo")
    risk = assess_infection_risk(m, None, None, PreviousMeasurement(area_cm2=3.0))
    assert not risk.flagged
    text = " | ".join(risk.not_evaluated)
    assert "no scale marker" in text and "periwound redness" in text and "tissue" in text
    risk = assess_infection_risk(
        Measurement(status="measured", area_cm2=5.0), None, None, PreviousMeasurement(area_cm2=None)
    )
    assert "previous visit was not measured" in " ".join(risk.not_evaluated)


def _lit(img: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """The same scene under other light: each RGB channel scaled (a colour cast, or a darker exposure)."""
    return np.clip(img.astype(np.float32) * np.asarray(gains), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("light", "gains", "raw_misreads"),
    [
        ("warm indoor light", (1.0, 0.7, 0.45), None),  # these painted colours survive it even uncalibrated
        ("under-exposed", (0.45, 0.45, 0.45), "necrotic"),  # red and yellow read as dark: necrotic
        ("bluish shade", (0.7, 0.85, 1.0), "slough"),  # yellow loses its hue: slough not found
    ],
)
def test_the_marker_calibrates_tissue_colours_under_other_light(light, gains, raw_misreads):
    img, mask = painted_wound({RED: 0.6, YELLOW: 0.3, BLACK: 0.1})
    neutral = analyse_wound_photo(img, fixed_mask_segmenter(mask), marker_mm=20.0).tissue
    lit = _lit(img, gains)
    calibrated = analyse_wound_photo(lit, fixed_mask_segmenter(mask), marker_mm=20.0).tissue
    assert neutral is not None and calibrated is not None and "marker's white margin" in calibrated.method
    for name in ("granulation", "slough", "necrotic"):
        assert getattr(calibrated, name) == pytest.approx(getattr(neutral, name), abs=0.05), (light, name)
    if raw_misreads is not None:
        # The same pixels without the reference: what the calibration is for.
        raw = tissue_composition(lit, mask)
        assert raw is not None
        assert abs(getattr(raw, raw_misreads) - getattr(neutral, raw_misreads)) > 0.25, light


def test_no_marker_or_a_clipped_one_means_tissue_not_assessed():
    img, mask = painted_wound({RED: 0.6, YELLOW: 0.3, BLACK: 0.1}, marker=False)
    r = analyse_wound_photo(img, fixed_mask_segmenter(mask))
    assert r.tissue is None and r.tissue_not_assessed == NOT_ASSESSED_NO_MARKER
    marked, mask = painted_wound({RED: 0.6, YELLOW: 0.3, BLACK: 0.1})
    glaring = analyse_wound_photo(_lit(marked, (1.6, 1.6, 1.6)), fixed_mask_segmenter(mask), marker_mm=20.0)
    assert glaring.tissue is None and glaring.tissue_not_assessed == NOT_ASSESSED_OVEREXPOSED
