"""Wound-bed tissue mix (granulation / slough / necrotic) by colour in CIELAB."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telehealth.wound.colour import rgb_to_lab
from telehealth.wound.colour_reference import ColourReference
from telehealth.wound.models import TissueComposition

TISSUE_LIMITS = [
    "Colour rules only: not validated against clinician tissue labels.",
    "Colours are calibrated against the printed marker's white and black, which corrects the light's colour and the "
    "exposure but not shadows or glare: shadows inside deep wounds read as necrotic, glare as slough.",
    "Dressing residue, blood, ointments and exposed bone/tendon are not separate classes.",
    "Skin tone and wound-bed pigmentation vary; thresholds were set on typical colours.",
]


@dataclass(frozen=True)
class TissueRules:
    """CIELAB thresholds. Hue angle h = atan2(b*, a*) in degrees, chroma C = hypot(a*, b*)."""

    # Necrotic: black, or dark brown / grey (dark and not strongly coloured).
    necrotic_max_l: float = 25.0
    dark_max_l: float = 40.0
    dark_max_chroma: float = 30.0
    # Granulation: red to pink hues (red sits near h = 20..45 degrees; pink down to ~0; magenta-red below).
    red_hue_max: float = 55.0
    red_hue_min_wrapped: float = 330.0
    red_min_chroma: float = 15.0
    # Slough: yellow / tan hues, or pale (white-grey) tissue.
    yellow_hue_max: float = 110.0
    yellow_min_chroma: float = 12.0
    pale_min_l: float = 65.0
    pale_max_chroma: float = 12.0

    def describe(self) -> str:
        return (
            "Per-pixel CIELAB rules inside the wound mask: necrotic if L*<"
            f"{self.necrotic_max_l:g} or (L*<{self.dark_max_l:g} and C*<{self.dark_max_chroma:g}); "
            f"granulation if hue {self.red_hue_min_wrapped:g}..360 or 0..{self.red_hue_max:g} deg with "
            f"C*>={self.red_min_chroma:g}; slough if hue {self.red_hue_max:g}..{self.yellow_hue_max:g} deg with "
            f"C*>={self.yellow_min_chroma:g}, or pale (L*>={self.pale_min_l:g}, C*<{self.pale_max_chroma:g}); "
            "anything else unclassified."
        )


def classify_pixels(lab: np.ndarray, rules: TissueRules) -> np.ndarray:
    """Class per Lab pixel (N x 3): 0 granulation, 1 slough, 2 necrotic, 3 unclassified."""
    L, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a)) % 360.0
    necrotic = (L < rules.necrotic_max_l) | ((L < rules.dark_max_l) & (chroma < rules.dark_max_chroma))
    red = ((hue < rules.red_hue_max) | (hue >= rules.red_hue_min_wrapped)) & (chroma >= rules.red_min_chroma)
    yellow = (hue >= rules.red_hue_max) & (hue < rules.yellow_hue_max) & (chroma >= rules.yellow_min_chroma)
    pale = (L >= rules.pale_min_l) & (chroma < rules.pale_max_chroma)
    cls = np.full(L.shape, 3, np.uint8)
    # Order matters: darkness wins over hue (dark brown eschar has a "yellow-red" hue).
    cls[yellow | pale] = 1
    cls[red] = 0
    cls[necrotic] = 2
    return cls


def tissue_composition(
    rgb: np.ndarray, mask: np.ndarray, rules: TissueRules | None = None, reference: ColourReference | None = None
) -> TissueComposition | None:
    """Fractions of wound pixels per class; None when the mask is empty.

    `reference` (the marker's white and black) calibrates the colours first; without one the colours are taken as
    they are, which only a caller that knows them to be true (a synthetic scene) should ask for: the analysis
    pipeline does not assess tissue without a reference.
    """
    rules = rules or TissueRules()
    n = int(np.count_nonzero(mask))
    if n == 0:
        return None
    pixels = rgb[mask]
    if reference is not None:
        pixels = reference.calibrate(pixels)
    lab = rgb_to_lab(pixels[:, None, :])  # N x 1 x 3: cvtColor needs an image shape
    counts = np.bincount(classify_pixels(lab.reshape(-1, 3), rules), minlength=4)
    f = counts / n
    return TissueComposition(
        granulation=float(f[0]),
        slough=float(f[1]),
        necrotic=float(f[2]),
        unclassified=float(f[3]),
        pixels=n,
        method=rules.describe() + ("" if reference is None else f"; {reference.describe()}"),
        limits=list(TISSUE_LIMITS),
    )
