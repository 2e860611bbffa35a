"""Stable colours per label, chosen to stay visible on red-pink endoscopy and skin tones."""

from __future__ import annotations

import zlib

# BGR. Cyan, green, yellow, magenta, blue and orange read well against tissue.
_COLOURS_BGR: tuple[tuple[int, int, int], ...] = (
    (255, 255, 0),
    (0, 255, 0),
    (0, 255, 255),
    (255, 0, 255),
    (255, 128, 0),
    (0, 165, 255),
)

STATUS_OK_BGR = (40, 160, 40)
# Amber: the AI works but the content is not what the model knows, so its findings are withheld.
STATUS_CONTENT_BGR = (0, 165, 255)
STATUS_UNAVAILABLE_BGR = (0, 0, 200)
TEXT_BGR = (255, 255, 255)


def colour_for_label(label: str) -> tuple[int, int, int]:
    """The same label always gets the same colour, across runs and processes."""
    return _COLOURS_BGR[zlib.crc32(label.encode()) % len(_COLOURS_BGR)]
