"""The printable marker page: exact physical size, instructions, and a marker the detector reads."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from telehealth.wound import MarkerPolicy, detect_scale, marker_page_html, marker_page_svg
from telehealth.wound.marker_page import marker_cells

NS = "{http://www.w3.org/2000/svg}"


def test_svg_page_is_in_millimetres_with_exact_marker():
    svg = marker_page_svg(marker_id=3, marker_mm=20.0)
    root = ET.fromstring(svg)
    assert root.get("width") == "210mm" and root.get("height") == "297mm" and root.get("viewBox") == "0 0 210 297"
    group = root.find(f"{NS}g")
    rects = group.findall(f"{NS}rect")
    xs = [float(r.get("x")) for r in rects] + [float(r.get("x")) + float(r.get("width")) for r in rects]
    ys = [float(r.get("y")) for r in rects] + [float(r.get("y")) + float(r.get("height")) for r in rects]
    assert max(xs) - min(xs) == pytest.approx(20.0, abs=0.02)  # the black square is 20 mm on paper
    assert max(ys) - min(ys) == pytest.approx(20.0, abs=0.02)
    text = " ".join(t.text or "" for t in root.iter(f"{NS}text"))
    for phrase in ("next to the wound", "same plane", "fully visible", "actual size", "50 mm"):
        assert phrase in text


def test_page_marker_is_detected_with_its_id():
    cells = marker_cells(3)
    assert cells.shape == (6, 6) and cells[0].all() and cells[:, 0].all()  # black border
    # Rasterise the cell grid the way a printer would (40 px per cell) and detect it.
    img = np.full((400, 400), 255, np.uint8)
    img[80:320, 80:320] = np.where(np.kron(cells, np.ones((40, 40), bool)), 0, 255)
    s = detect_scale(cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), MarkerPolicy(marker_mm=20.0))
    assert s.status == "measured" and s.marker.marker_id == 3
    assert s.mm_per_px == pytest.approx(20.0 / 240, rel=0.01)


def test_html_wraps_svg_for_printing_and_validates_input():
    html = marker_page_html(marker_mm=25.0)
    assert "@page{size:A4;margin:0}" in html and "<svg" in html and "25 mm" in html
    with pytest.raises(ValueError):
        marker_page_svg(marker_id=99)
    with pytest.raises(ValueError):
        marker_page_svg(marker_mm=1.0)
