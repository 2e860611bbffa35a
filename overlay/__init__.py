"""Drawing perception findings onto video frames.

Uses only `perception`'s result types; knows nothing of streaming.
"""

from overlay.draw import OverlayState, draw_overlay

__all__ = ["OverlayState", "draw_overlay"]
