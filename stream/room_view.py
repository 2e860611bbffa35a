"""What one consult participant receives: the other side's video, or a card saying why there is none.

The track exists from the moment a participant joins, before the other side
has, so the call is negotiated once; it follows whichever stream the other side
is publishing now (a reconnect gives a new stream) without renegotiation, and
its timestamps run on its own clock so the switch is seamless for the encoder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor

import av
import cv2
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from stream.frames import array_to_frame
from stream.freshest import SlotClosed
from stream.hub import StreamEntry
from stream.media_clock import VIDEO_CLOCK_HZ, VIDEO_TIME_BASE
from stream.metrics import StreamMetrics
from stream.private_frames import private_frame
from stream.tracks import next_output_frame

CARD_INTERVAL_S = 0.2  # cards change rarely: 5 frames a second keep the encoder and the browser alive
PAUSED_AFTER_S = 1.5  # no frame from the other side for this long: say so instead of freezing silently
DEFAULT_SIZE = (640, 480)


def card_image(text: str, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """A dark frame with one centred line of text (BGR)."""
    width, height = size
    image = np.full((height, width, 3), 40, np.uint8)
    scale = max(0.5, width / 900)
    thickness = max(1, round(scale * 2))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    origin = (max(4, (width - tw) // 2), (height + th) // 2)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), thickness, cv2.LINE_AA)
    return image


class RoomViewTrack(MediaStreamTrack):
    """The other participant's current stream (drawn with findings when `draw`), else a waiting card."""

    kind = "video"

    def __init__(
        self,
        peer_stream: Callable[[], StreamEntry | None],
        waiting_text: str,
        metrics: StreamMetrics,
        draw_executor: Executor,
        *,
        draw: bool,
    ) -> None:
        super().__init__()
        self._peer_stream = peer_stream
        self._waiting_text = waiting_text
        self._metrics = metrics
        self._draw_executor = draw_executor
        self._draw = draw
        self._may_draw = draw
        self._entry: StreamEntry | None = None
        self._seen = 0
        self._size = DEFAULT_SIZE
        self._cards: dict[tuple[str, tuple[int, int]], npt.NDArray[np.uint8]] = {}
        self._clock_start = time.monotonic()
        self._last_pts = -1

    async def recv(self) -> av.VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            entry = self._peer_stream()
            if entry is None:
                await asyncio.sleep(CARD_INTERVAL_S)
                return self._card(self._waiting_text)
            if entry is not self._entry:
                self._entry, self._seen = entry, 0
            try:
                self._seen, source, out = await asyncio.wait_for(
                    next_output_frame(entry.pipeline, self._seen, self._metrics, self._draw_executor, draw=self._draw),
                    PAUSED_AFTER_S,
                )
            except SlotClosed:  # that stream ended; the room has (or soon will have) another or none
                self._entry = None
                await asyncio.sleep(0.05)
                continue
            except TimeoutError:
                return self._card("Video paused: waiting for the other side's camera")
            self._size = (out.width, out.height)
            if out is source.frame:
                # Undrawn, this is the stream's own frame, which its other outputs also read: this view's encoder
                # rewrites what it is sent, so it gets a copy (stream/private_frames.py). Relayed outputs copy there.
                out = private_frame(out)
            return self._stamp(out)

    @property
    def draws(self) -> bool:
        return self._draw

    def set_draw(self, draw: bool) -> None:
        """Findings drawn on (True) or the plain video (False) from the next frame: the clinician's overlay switch.
        Only a track made with draw=True may draw; the patient's view never carries findings."""
        self._draw = draw and self._may_draw

    def _card(self, text: str) -> av.VideoFrame:
        key = (text, self._size)
        image = self._cards.get(key)
        if image is None:
            image = self._cards[key] = card_image(text, self._size)
        return self._stamp(array_to_frame(image))

    def _stamp(self, frame: av.VideoFrame) -> av.VideoFrame:
        pts = max(self._last_pts + 1, int((time.monotonic() - self._clock_start) * VIDEO_CLOCK_HZ))
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        return frame
