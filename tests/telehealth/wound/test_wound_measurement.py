"""Size measurement on synthetic photos with a drawn ArUco marker of known pixel size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from wound_synth import RED, ellipse_mask, paint, place_marker, skin_photo, wound_scene

from telehealth.wound import (
    NOT_MEASURED_NO_MARKER,
    NOT_MEASURED_STEEP,
    MarkerPolicy,
    WoundAnalysis,
    analyse_wound_photo,
    detect_scale,
    fixed_mask_segmenter,
)
from telehealth.wound.colour_reference import NOT_ASSESSED_NO_MARKER

AXES = (110.0, 65.0)


def ramanujan_perimeter(a: float, b: float) -> float:
    return math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))


@pytest.mark.parametrize(
    ("marker_px", "angle", "seed"),
    [(100.0, 0.0, 0), (83.0, 23.0, 1), (131.5, -41.0, 2)],
)
def test_area_length_width_perimeter_within_tolerance(marker_px, angle, seed):
    sc = wound_scene(marker_px=marker_px, angle=angle, axes=AXES, seed=seed)
    r = analyse_wound_photo(sc.rgb, fixed_mask_segmenter(sc.mask, "truth", "1"), marker_mm=20.0)
    m = r.measurement
    assert r.scale.status == "measured" and r.scale.marker is not None
    assert r.scale.marker.marker_id == 7 and r.scale.marker.side_ratio < 1.02
    cm = sc.mm_per_px / 10
    true_area = math.pi * AXES[0] * AXES[1] * cm * cm
    assert m.status == "measured" and m.reason is None
    assert m.area_cm2 == pytest.approx(true_area, rel=0.03)
    assert m.length_cm == pytest.approx(2 * AXES[0] * cm, rel=0.03)
    assert m.width_cm == pytest.approx(2 * AXES[1] * cm, rel=0.03)
    assert m.min_rect_length_cm == pytest.approx(2 * AXES[0] * cm, rel=0.03)
    assert m.min_rect_width_cm == pytest.approx(2 * AXES[1] * cm, rel=0.03)
    assert m.perimeter_cm == pytest.approx(ramanujan_perimeter(*AXES) * cm, rel=0.03)
    assert m.regions == 1
    assert r.model.name == "truth" and r.model.version == "1"
    assert r.evidence.overlay_png.startswith(b"\x89PNG")


def test_marker_size_is_configurable():
    sc = wound_scene(marker_px=100.0, marker_mm=30.0)
    r = analyse_wound_photo(sc.rgb, fixed_mask_segmenter(sc.mask), marker_mm=30.0)
    assert r.scale.mm_per_px == pytest.approx(0.30, rel=0.01)
    assert r.measurement.area_cm2 == pytest.approx(math.pi * AXES[0] * AXES[1] * 0.03**2, rel=0.03)


def test_no_marker_gives_not_measured_and_no_numbers():
    sc = wound_scene(with_marker=False)
    r = analyse_wound_photo(sc.rgb, fixed_mask_segmenter(sc.mask))
    m = r.measurement
    assert r.scale.status == "not_measured" and r.scale.reason == NOT_MEASURED_NO_MARKER
    assert r.scale.mm_per_px is None and r.scale.marker is None
    assert m.status == "not_measured" and m.reason == NOT_MEASURED_NO_MARKER
    assert all(
        getattr(m, f) is None
        for f in ("area_cm2", "length_cm", "width_cm", "perimeter_cm", "min_rect_length_cm", "min_rect_width_cm")
    )
    # Redness is relative to the surrounding skin and needs no scale: it is still reported (in pixels). The tissue
    # mix needs true colours, which only the marker's white and black can vouch for: not assessed, and why.
    assert r.redness is not None and r.redness.unit == "px"
    assert r.tissue is None and r.tissue_not_assessed == NOT_ASSESSED_NO_MARKER
    assert NOT_ASSESSED_NO_MARKER in r.risk.not_evaluated
    assert "area change" in " ".join(r.risk.not_evaluated)


def test_steep_marker_refused_with_reason():
    sc = wound_scene(marker_px=110.0, angle=10.0, tilt=0.7)
    r = analyse_wound_photo(sc.rgb, fixed_mask_segmenter(sc.mask))
    assert r.scale.status == "not_measured"
    assert r.scale.reason.startswith(NOT_MEASURED_STEEP)
    assert r.scale.marker is not None and r.scale.marker.side_ratio > 1.25  # what was seen is kept
    assert r.measurement.status == "not_measured" and r.measurement.area_cm2 is None
    assert r.measurement.reason.startswith(NOT_MEASURED_STEEP)


def test_mild_tilt_is_accepted():
    img = skin_photo(400, 300)
    place_marker(img, (200, 150), 90.0, 12.0, tilt=0.9)
    s = detect_scale(img, MarkerPolicy())
    assert s.status == "measured" and 1.05 < s.marker.side_ratio < 1.25


def test_tiny_marker_refused():
    img = skin_photo(400, 300)
    place_marker(img, (200, 150), 16.0)
    s = detect_scale(img, MarkerPolicy(min_side_px=20))
    assert s.status in ("not_measured",)
    assert s.reason is not None


def test_marker_pixels_never_counted_as_wound():
    sc = wound_scene(marker_px=100.0)
    h, w = sc.mask.shape
    mask = sc.mask | ellipse_mask((h, w), (w * 0.8, h * 0.25), (60, 60))  # segmenter also grabbed the marker
    r = analyse_wound_photo(sc.rgb, fixed_mask_segmenter(mask))
    cm = sc.mm_per_px / 10
    assert r.measurement.area_cm2 == pytest.approx(math.pi * AXES[0] * AXES[1] * cm * cm, rel=0.03)
    assert any("marker" in w for w in r.warnings)


def test_two_regions_and_specks():
    img = skin_photo(600, 400)
    place_marker(img, (520, 80), 80.0)
    a = ellipse_mask((400, 600), (150, 250), (60, 40))
    b = ellipse_mask((400, 600), (330, 250), (40, 30))
    speck = np.zeros_like(a)
    speck[10:12, 10:12] = True  # 4 px of segmentation noise
    for m in (a, b):
        paint(img, m, RED)
    r = analyse_wound_photo(img, fixed_mask_segmenter((a | b | speck).astype(np.uint8) * 255))
    cm = 20.0 / 80.0 / 10
    assert r.measurement.regions == 2
    assert r.measurement.area_cm2 == pytest.approx(math.pi * (60 * 40 + 40 * 30) * cm * cm, rel=0.03)
    # Overall length spans both regions: from x=90 to x=370.
    assert r.measurement.length_cm == pytest.approx(280 * cm, rel=0.03)


def test_empty_mask_means_no_wound():
    sc = wound_scene()
    r = analyse_wound_photo(sc.rgb, fixed_mask_segmenter(np.zeros_like(sc.mask)))
    assert not r.wound_found and r.wound_pixels == 0
    assert r.measurement.status == "not_measured" and "no wound" in r.measurement.reason
    assert r.tissue is None and r.redness is None and not r.risk.flagged


def test_bad_inputs_rejected():
    sc = wound_scene()
    with pytest.raises(ValueError, match="does not match"):
        analyse_wound_photo(sc.rgb, fixed_mask_segmenter(sc.mask[:-1]))
    with pytest.raises(ValueError, match="uint8"):
        analyse_wound_photo(sc.rgb.astype(np.float32), fixed_mask_segmenter(sc.mask))


def test_result_round_trips_through_json():
    sc = wound_scene()
    r = analyse_wound_photo(sc.rgb, fixed_mask_segmenter(sc.mask))
    text = r.model_dump_json()
    back = WoundAnalysis.model_validate_json(text)
    assert back == r
    assert back.evidence.overlay_png.startswith(b"\x89PNG")
    assert back.risk.note.endswith("not a diagnosis.")
