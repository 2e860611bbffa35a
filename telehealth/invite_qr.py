"""An invite link as a QR code the patient scans from the GP's screen (segno: pure Python, SVG out)."""

from __future__ import annotations

import base64
import io

import segno


def qr_svg_data_url(url: str) -> str:
    """A data: URL of an SVG QR code for `url`: the pages' content policy allows data: images, and an <img> cannot
    run script, so the link's markup never reaches the page's DOM."""
    # Error correction M survives a smudged or glare-struck screen; a 4-module quiet zone is what scanners expect.
    code = segno.make_qr(url, error="m")
    out = io.BytesIO()
    code.save(out, kind="svg", scale=6, border=4, xmldecl=False, svgns=True, title="invite link QR code")
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode("ascii")
