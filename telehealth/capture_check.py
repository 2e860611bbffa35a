"""Live checks of a camera frame before a patient takes the photo: enough light, in focus, the scale marker found
and usable, the wound in frame. The same thresholds as the upload's checks and the analysis, so a frame that passes
here is one the clinic can measure. Blocking (image work): call from a worker thread, except `wound_check`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from telehealth.photo_intake import Quality, measure_quality
from telehealth.wound.marker import MarkerPolicy, detect_scale
from telehealth.wound.segmentation import WoundMask

CheckName = Literal["light", "focus", "marker", "wound"]
_OVEREXPOSED_MEAN = 235.0
# A wound mask smaller than this share of the frame is a speck, larger is a close-up with no room for the marker.
_WOUND_MIN_SHARE, _WOUND_MAX_SHARE = 0.003, 0.6


@dataclass(frozen=True)
class Check:
    name: CheckName
    passed: bool
    message: str  # what the patient reads: the problem and what to do, or that it is fine


def light_check(quality: Quality, min_brightness: float) -> Check:
    if quality.brightness < min_brightness:
        return Check("light", False, "Too dark: move to a brighter place or turn on a light.")
    if quality.brightness > _OVEREXPOSED_MEAN:
        return Check("light", False, "Too bright: move out of direct sunlight or away from the lamp.")
    return Check("light", True, "Light is good.")


def focus_check(quality: Quality, min_sharpness: float) -> Check:
    if quality.sharpness < min_sharpness:
        return Check("focus", False, "Blurred: hold the phone still, about 20-30 cm away, and tap the wound to focus.")
    return Check("focus", True, "In focus.")


def marker_check(rgb: npt.NDArray[np.uint8], marker_mm: float) -> Check:
    scale = detect_scale(rgb, MarkerPolicy(marker_mm=marker_mm))
    if scale.status == "measured":
        return Check("marker", True, "Scale marker found.")
    if scale.marker is None:
        return Check("marker", False, "No scale marker seen: place the printed marker flat beside the wound.")
    reason = scale.reason or ""
    if "side ratio" in reason:
        return Check("marker", False, "The marker is seen at an angle: hold the phone straight above the wound.")
    return Check("marker", False, "The marker is too small in the picture: move the phone a little closer.")


def wound_check(mask: WoundMask | None, model_available: bool) -> Check:
    """From the wound model's mask of the frame (None: the model did not take the frame for a wound photo)."""
    if not model_available:
        return Check("wound", True, "Keep the whole wound inside the circle.")
    if mask is None:
        return Check("wound", False, "No wound seen: point the camera at the wound, inside the circle.")
    found = np.asarray(mask.mask, dtype=bool)
    share = float(found.mean()) if found.size else 0.0
    if share < _WOUND_MIN_SHARE:
        return Check("wound", False, "No wound seen: point the camera at the wound, inside the circle.")
    if share > _WOUND_MAX_SHARE:
        return Check("wound", False, "Too close: move back so the wound and the marker both fit.")
    edges = found[0, :].any() or found[-1, :].any() or found[:, 0].any() or found[:, -1].any()
    if edges:
        return Check("wound", False, "Part of the wound is outside the picture: centre it in the circle.")
    return Check("wound", True, "Wound in frame.")


def image_checks(image: Image.Image, min_brightness: float, min_sharpness: float, marker_mm: float) -> list[Check]:
    """Light and focus by the upload's own measure, then the marker; `image` is the decoded RGB frame."""
    quality = measure_quality(image)
    return [
        light_check(quality, min_brightness),
        focus_check(quality, min_sharpness),
        marker_check(np.asarray(image), marker_mm),
    ]
