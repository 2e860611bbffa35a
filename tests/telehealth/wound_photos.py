"""Synthetic wound photos for the telehealth tests: the analysis package's scenes, encoded as JPEG, and their mask."""

from __future__ import annotations

import io
from functools import lru_cache

import pytest
from PIL import Image

from tests.telehealth.wound.wound_synth import Scene, wound_scene


@lru_cache(maxsize=4)
def scene(with_marker: bool = True) -> Scene:
    # Same wound, same mask; with the 20 mm marker 100 px wide the truth is 0.2 mm/px.
    return wound_scene(marker_px=100.0, with_marker=with_marker, seed=3)


def scene_jpeg(with_marker: bool = True) -> bytes:
    out = io.BytesIO()
    Image.fromarray(scene(with_marker).rgb, "RGB").save(out, format="JPEG", quality=95)
    return out.getvalue()


@lru_cache(maxsize=8)
def healing_jpeg(scale: float) -> bytes:
    """The wound of scene_jpeg() (with the marker) with both axes scaled: a visit's photo as the wound shrinks."""
    shot = wound_scene(marker_px=100.0, with_marker=True, seed=3, axes=(110.0 * scale, 65.0 * scale))
    out = io.BytesIO()
    Image.fromarray(shot.rgb, "RGB").save(out, format="JPEG", quality=95)
    return out.getvalue()


def true_area_cm2() -> float:
    s = scene(True)
    return float(s.mask.sum()) * (s.mm_per_px**2) / 100.0


@pytest.fixture
def synthetic_wound_services(tmp_path, telehealth_db_url):
    """Telehealth whose wound segmenter returns the synthetic scene's known mask (imported as `services`)."""
    from scopecast.app import build_telehealth
    from telehealth.wound import fixed_mask_segmenter
    from tests.telehealth.telehealth_testutil import fast_settings

    made = build_telehealth(
        fast_settings(tmp_path / "telehealth", database_url=telehealth_db_url),
        segmenter_factory=lambda: fixed_mask_segmenter(scene(True).mask, "synthetic-mask", "1"),
    )
    yield made
    made.store.close()


@pytest.fixture
def traced_wound_services(tmp_path, telehealth_db_url):
    """Telehealth whose segmenter traces the synthetic wound's own red in each photo, so photos of a wound that
    shrinks measure smaller (fixed_mask_segmenter would give every photo the same area)."""
    import numpy as np

    from scopecast.app import build_telehealth
    from telehealth.wound.segmentation import ModelRef, WoundMask
    from tests.telehealth.telehealth_testutil import fast_settings

    def trace_red(rgb):  # type: ignore[no-untyped-def]
        r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
        # The painted granulation is strongly red; skin and the marker's white and black are not.
        return WoundMask((r - g > 90) & (r - b > 80), ModelRef(name="red-trace", version="1"), score=1.0)

    made = build_telehealth(
        fast_settings(tmp_path / "telehealth", database_url=telehealth_db_url), segmenter_factory=lambda: trace_red
    )
    yield made
    made.store.close()
