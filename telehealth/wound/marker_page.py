"""Printable scale-marker page (SVG in millimetres, or HTML wrapping it) for patients to print."""

from __future__ import annotations

from html import escape

import cv2
import numpy as np

from telehealth.wound.marker import DEFAULT_DICTIONARY, DEFAULT_MARKER_MM, aruco_dictionary

INSTRUCTIONS = (
    "Print at 100% / 'actual size' (not 'fit to page'), then check the bar below measures 50 mm.",
    "If the bar is not 50 mm, print again at 100%: the app cannot tell a wrongly scaled marker from one photo.",
    "Cut out the marker with its white margin, and keep the margin clean: it is also the colour reference.",
    "Place it next to the wound, in the same plane, fully visible, not covering the wound.",
    "Take the photo straight on, from about 20-40 cm, in even light without flash glare.",
)


def marker_cells(marker_id: int = 0, dictionary: str = DEFAULT_DICTIONARY) -> np.ndarray:
    """Marker as a bool grid (True = black), black border included: 6 x 6 for 4x4 dictionaries."""
    d = aruco_dictionary(dictionary)
    n = d.markerSize + 2
    if not 0 <= marker_id < d.bytesList.shape[0]:
        raise ValueError(f"marker id {marker_id} not in {dictionary} (0..{d.bytesList.shape[0] - 1})")
    return cv2.aruco.generateImageMarker(d, marker_id, n, borderBits=1) < 128


def marker_svg_group(x_mm: float, y_mm: float, marker_mm: float, cells: np.ndarray) -> str:
    """Black cells as rectangles; one cell = marker_mm / cells side, exact on any printer."""
    c = marker_mm / cells.shape[0]
    # Rectangles overlap by a hair so no white seams appear between cells when rasterised.
    eps = 0.01
    rects = [
        f'<rect x="{x_mm + j * c:.3f}" y="{y_mm + i * c:.3f}" width="{c + eps:.3f}" height="{c + eps:.3f}"/>'
        for i, j in zip(*np.nonzero(cells))
    ]
    return '<g fill="#000">' + "".join(rects) + "</g>"


def marker_page_svg(
    marker_id: int = 0,
    marker_mm: float = DEFAULT_MARKER_MM,
    dictionary: str = DEFAULT_DICTIONARY,
    page_mm: tuple[float, float] = (210.0, 297.0),
) -> str:
    """A4 (by default) SVG page whose width/height are in mm, so it prints at exact size."""
    if not 5.0 <= marker_mm <= 150.0:
        raise ValueError(f"marker side must be 5..150 mm, got {marker_mm}")
    cells = marker_cells(marker_id, dictionary)
    pw, ph = page_mm
    margin = marker_mm / 2  # white quiet zone the detector needs around the black square
    x, y = (pw - marker_mm) / 2, 40.0
    cut = (x - margin, y - margin, marker_mm + 2 * margin)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{pw:g}mm" height="{ph:g}mm" viewBox="0 0 {pw:g} {ph:g}">',
        f'<rect x="0" y="0" width="{pw:g}" height="{ph:g}" fill="#fff"/>',
        '<text x="20" y="20" font-family="sans-serif" font-size="7" font-weight="bold">Wound photo scale marker</text>',
        f'<rect x="{cut[0]:.3f}" y="{cut[1]:.3f}" width="{cut[2]:.3f}" height="{cut[2]:.3f}" fill="none" '
        'stroke="#888" stroke-width="0.3" stroke-dasharray="2 2"/>',
        marker_svg_group(x, y, marker_mm, cells),
        f'<text x="{pw / 2:g}" y="{y + marker_mm + margin + 6:.1f}" font-family="sans-serif" font-size="4" '
        f'text-anchor="middle">black square: {marker_mm:g} mm ({dictionary} id {marker_id})</text>',
    ]
    ty = y + marker_mm + margin + 20
    for i, line in enumerate(INSTRUCTIONS):
        parts.append(
            f'<text x="20" y="{ty + i * 8:.1f}" font-family="sans-serif" font-size="4.2">{i + 1}. {escape(line)}</text>'
        )
    by = ty + len(INSTRUCTIONS) * 8 + 10
    parts += [
        f'<rect x="20" y="{by:.1f}" width="50" height="3" fill="#000"/>',
        f'<text x="75" y="{by + 3:.1f}" font-family="sans-serif" font-size="4">50 mm check bar</text>',
        "</svg>",
    ]
    return "\n".join(parts)


PRINT_CSS = (
    "@page{size:A4;margin:0}html,body{margin:0;padding:0}svg{display:block}"
    ".screen{font-family:sans-serif;max-width:40rem;padding:1rem}@media print{.screen{display:none}}"
)


def marker_page_html(
    marker_id: int = 0,
    marker_mm: float = DEFAULT_MARKER_MM,
    dictionary: str = DEFAULT_DICTIONARY,
    stylesheet: str | None = None,
) -> str:
    """The SVG page inside HTML with print CSS (no margins added by the browser, no scaling), and the steps on
    screen. `stylesheet` links PRINT_CSS from that URL (a server whose content policy refuses inline styles);
    without it the CSS is inline, for a file printed on its own."""
    svg = marker_page_svg(marker_id, marker_mm, dictionary)
    steps = "".join(f"<li>{escape(line)}</li>" for line in INSTRUCTIONS)
    style = f'<link rel="stylesheet" href="{escape(stylesheet)}">' if stylesheet else f"<style>{PRINT_CSS}</style>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Wound photo scale marker</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{style}'
        '</head><body><main><section class="screen"><h1>Print your scale marker</h1>'
        "<p>The marker lets the clinic measure your wound in centimetres and read its colours correctly. Print this "
        'page with your browser\'s Print command at 100% ("actual size").</p>'
        f"<ol>{steps}</ol></section>"
        f'<div role="img" aria-label="scale marker page to print">{svg}</div></main></body></html>'
    )
