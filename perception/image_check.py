"""The one check of an incoming RGB image (a video frame, a question's image, a wound photo).

Every caller asks the same four questions in the same order (a numpy array?
H x W x 3? uint8? big enough?); they differ only in what they call the image,
the smallest side they accept and the error type their own callers expect, so
those are parameters and each caller re-raises ``ImageCheckError`` as its own
type where it must keep one.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Problem = Literal["type", "layout", "dtype", "size"]


class ImageCheckError(ValueError):
    """An image that fails the check; the message names the problem, ``problem`` says which check failed."""

    def __init__(self, message: str, problem: Problem) -> None:
        super().__init__(message)
        self.problem: Problem = problem


def check_rgb_image(
    image: object,
    *,
    what: str = "frame",
    min_side: int = 8,
    layout: str = "H x W x 3 (RGB)",
) -> npt.NDArray[np.uint8]:
    """``image`` unchanged when it is an H x W x 3 uint8 array with both sides >= ``min_side``, else ``ImageCheckError``.

    ``what`` starts every message ("frame must be uint8, got float32"); ``layout``
    is how the message names the expected layout.
    """
    if not isinstance(image, np.ndarray):
        raise ImageCheckError(f"{what} must be a numpy array, got {type(image).__name__}", "type")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageCheckError(f"{what} must be {layout}, got shape {tuple(image.shape)}", "layout")
    if image.dtype != np.uint8:
        raise ImageCheckError(f"{what} must be uint8, got {image.dtype}", "dtype")
    h, w = int(image.shape[0]), int(image.shape[1])
    if h < min_side or w < min_side:
        if min_side <= 1:
            raise ImageCheckError(f"{what} is empty", "size")
        raise ImageCheckError(f"{what} is too small: {w}x{h} (minimum {min_side}x{min_side})", "size")
    return image
