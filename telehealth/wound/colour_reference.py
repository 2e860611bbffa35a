"""The printed marker as a colour reference: its white margin and its black border calibrate the photo's colours.

Tissue is told apart by colour, and a photo's colours depend on the light and the camera's white balance: under warm
light yellow slough turns orange-red and reads as granulation; an under-exposed photo makes red tissue dark enough
to read as necrotic. The marker's paper white and printed black are known colours in the same light, so each colour
channel is mapped linearly from (photo black, photo white) to (printed black, paper white). Without a marker the
colours cannot be trusted, and the tissue mix is not assessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from telehealth.wound.models import MarkerObservation

NOT_ASSESSED_NO_MARKER = (
    "tissue mix not assessed: colour not calibrated (no printed marker in the photo to take white and black from)"
)
NOT_ASSESSED_OVEREXPOSED = "tissue mix not assessed: colour not calibrated (the marker's white margin is over-exposed)"
NOT_ASSESSED_LOW_CONTRAST = (
    "tissue mix not assessed: colour not calibrated (the marker's black and white are too alike: too dark, or glare)"
)

# What paper white and printed black read as in sRGB under neutral light (CIELAB L* about 95 and 8).
PAPER_WHITE = 242.0
PRINTED_BLACK = 20.0
_MIN_CONTRAST = 60.0  # photo levels between the marker's black and white, in every channel
_CLIPPED = 253.0


@dataclass(frozen=True)
class ColourReference:
    """The marker's white margin and black border as they appear in this photo (median RGB)."""

    white_rgb: tuple[float, float, float]
    black_rgb: tuple[float, float, float]

    def calibrate(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """`pixels` (... x 3 RGB) as they would read under neutral light at the right exposure."""
        white, black = np.asarray(self.white_rgb), np.asarray(self.black_rgb)
        scaled = (pixels.astype(np.float32) - black) / (white - black) * (PAPER_WHITE - PRINTED_BLACK) + PRINTED_BLACK
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)

    def describe(self) -> str:
        return (
            "colours calibrated per channel against the marker's white margin "
            f"(RGB {_fmt(self.white_rgb)}) and black border (RGB {_fmt(self.black_rgb)})"
        )


def _fmt(rgb: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.0f}" for v in rgb)


def _sample(rgb: npt.NDArray[np.uint8], marker: MarkerObservation, unit_points: npt.NDArray[np.float32]) -> np.ndarray:
    """RGB at points given in the marker's own square (0..1 across the black square), inside the photo."""
    corners = np.asarray(marker.corners_px, np.float32)
    square = np.asarray([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)  # clockwise from top-left, like the corners
    to_photo = cv2.getPerspectiveTransform(square, corners)
    xy = cv2.perspectiveTransform(unit_points.reshape(-1, 1, 2), to_photo).reshape(-1, 2)
    h, w = rgb.shape[:2]
    x, y = np.rint(xy[:, 0]).astype(int), np.rint(xy[:, 1]).astype(int)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    return rgb[y[inside], x[inside]]


def _ring(inner: float, outer: float, steps: int = 40) -> npt.NDArray[np.float32]:
    """Points between two squares centred on the marker, `inner` and `outer` in marker sides from its edge."""
    grid = np.linspace(-outer, 1 + outer, steps, dtype=np.float32)
    u, v = np.meshgrid(grid, grid)
    edge = np.maximum(np.maximum(-u, u - 1), np.maximum(-v, v - 1))  # distance outside the square (negative inside)
    keep = (edge >= inner) & (edge <= outer)
    return np.stack([u[keep], v[keep]], axis=1)


def marker_colour_reference(rgb: npt.NDArray[np.uint8], marker: MarkerObservation | None) -> ColourReference | str:
    """The reference from a detected marker, or the reason (one of the NOT_ASSESSED_* texts) there is none."""
    if marker is None:
        return NOT_ASSESSED_NO_MARKER
    # The white margin is half a marker side wide: sample its middle, clear of the print's edge and the cut.
    white = _sample(rgb, marker, _ring(0.1, 0.35))
    # The black border is the outer cell ring of the 6 x 6 cell marker: sample inside it, clear of the edges.
    black = _sample(rgb, marker, _ring(-0.13, -0.04))
    if len(white) < 20 or len(black) < 20:
        return NOT_ASSESSED_NO_MARKER
    white_rgb = np.median(white, axis=0)
    black_rgb = np.median(black, axis=0)
    if (white_rgb >= _CLIPPED).any():
        return NOT_ASSESSED_OVEREXPOSED
    if (white_rgb - black_rgb < _MIN_CONTRAST).any():
        return NOT_ASSESSED_LOW_CONTRAST
    return ColourReference(
        (float(white_rgb[0]), float(white_rgb[1]), float(white_rgb[2])),
        (float(black_rgb[0]), float(black_rgb[1]), float(black_rgb[2])),
    )
