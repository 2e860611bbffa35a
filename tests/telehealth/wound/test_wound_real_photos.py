"""Real wound photos (FUSeg) with their ground-truth masks: no marker -> not measured."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from telehealth.wound import NOT_MEASURED_NO_MARKER, analyse_wound_photo, fixed_mask_segmenter


def fuseg_dir() -> Path:
    root = os.environ.get("SCOPECAST_DATA_DIR")
    base = Path(root) if root else Path(__file__).resolve().parents[4] / "shared" / "data"
    return base / "fuseg" / "train"


@pytest.mark.data
def test_ground_truth_masks_on_real_photos():
    d = fuseg_dir()
    if not (d / "images").is_dir() or not (d / "masks").is_dir():
        pytest.skip(f"FUSeg photos not found at {d} (set SCOPECAST_DATA_DIR to the folder holding fuseg/)")
    analysed = 0
    for img_path in sorted((d / "images").glob("*.jpg"))[:40]:
        mask_path = d / "masks" / (img_path.stem + ".png")
        if not mask_path.is_file():
            continue
        mask = np.asarray(Image.open(mask_path))
        if mask.ndim == 3:
            mask = mask[..., 0]
        if not mask.any():
            continue
        rgb = np.asarray(Image.open(img_path).convert("RGB"))
        r = analyse_wound_photo(rgb, fixed_mask_segmenter(mask > 0, "fuseg-ground-truth", "train"))
        assert r.wound_found
        assert r.scale.status == "not_measured" and r.scale.reason == NOT_MEASURED_NO_MARKER
        assert r.measurement.area_cm2 is None and r.measurement.length_cm is None
        # No marker in these photos, so nothing vouches for their colours: the tissue mix is not assessed.
        assert r.tissue is None and r.tissue_not_assessed is not None
        assert r.tissue_not_assessed.startswith("tissue mix not assessed: colour not calibrated")
        assert r.evidence.overlay_png.startswith(b"\x89PNG")
        analysed += 1
        if analysed == 4:
            break
    assert analysed == 4
