"""A viewer's video track whose source can be swapped while it plays (overlay on, off, another opacity).

aiortc's `replaceTrack` would leave the sender awaiting the old track (stopping that ends the sender) and lets the
new source repeat the frame the old one just sent, with the same timestamp, which corrupts the receiver's decoding.
This track reads whichever source is current, and passes a frame on only if its timestamp moves forward.
"""

from __future__ import annotations

import asyncio
from typing import cast

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class SwitchableTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self._source = source
        self._switched = asyncio.Event()
        self._last_pts = -1

    @property
    def source(self) -> MediaStreamTrack:
        return self._source

    def switch(self, source: MediaStreamTrack) -> MediaStreamTrack:
        """Read from `source` from now on; returns the previous source (no longer read: the caller may stop it)."""
        previous, self._source = self._source, source
        self._switched.set()
        return previous

    async def recv(self) -> av.VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            source = self._source
            self._switched.clear()
            frame_wait = asyncio.ensure_future(source.recv())
            switch_wait = asyncio.ensure_future(self._switched.wait())
            done, _ = await asyncio.wait({frame_wait, switch_wait}, return_when=asyncio.FIRST_COMPLETED)
            switch_wait.cancel()
            if frame_wait not in done:  # switched while waiting: read the new source instead
                frame_wait.cancel()
                continue
            try:
                # Sources are video tracks; aiortc types recv() for every kind of track.
                frame = cast(av.VideoFrame, frame_wait.result())
            except MediaStreamError:
                if source is not self._source:  # the old source was stopped after a switch
                    continue
                raise
            if frame.pts is not None and frame.pts <= self._last_pts:
                continue  # the new source's first frame may be the one the old source just sent
            self._last_pts = frame.pts if frame.pts is not None else self._last_pts
            return frame
