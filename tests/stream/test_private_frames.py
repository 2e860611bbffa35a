"""Each relay reader gets a frame of its own: one viewer's encoder rebasing its frame must not move another's."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from stream.private_frames import PrivateFrameTrack, private_frame

TIME_BASE = fractions.Fraction(1, 90_000)


class Yuv420Camera(MediaStreamTrack):
    """Frames as the annotated track sends them (yuv420p, so an encoder takes them as they are), 30 a second."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        await asyncio.sleep(1 / 30)
        image = np.full((240, 320, 3), self._index * 20 % 255, np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        frame.pts, frame.time_base = self._index * 3000, TIME_BASE
        self._index += 1
        return frame


def test_a_private_frame_has_the_same_pixels_and_times_in_another_object() -> None:
    image = np.random.default_rng(1).integers(0, 255, (360, 640, 3), np.uint8)
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
    frame.pts, frame.time_base, frame.opaque = 450_000, TIME_BASE, 12.5
    copy = private_frame(frame)
    assert copy is not frame
    assert np.array_equal(copy.to_ndarray(), frame.to_ndarray())
    assert (copy.pts, copy.time_base, copy.opaque) == (450_000, TIME_BASE, 12.5)


def test_odd_sizes_packed_formats_and_unstamped_frames_copy_too() -> None:
    packed = av.VideoFrame.from_ndarray(np.full((241, 321, 3), 9, np.uint8), format="bgr24")
    packed.pts, packed.time_base = 3000, TIME_BASE
    copy = private_frame(packed)
    assert copy.format.name == "bgr24" and np.array_equal(copy.to_ndarray(), packed.to_ndarray())
    odd = packed.reformat(format="yuv420p")  # 321 x 241: chroma planes round up
    copy = private_frame(odd)
    assert [bytes(p) for p in copy.planes] == [bytes(p) for p in odd.planes]
    unstamped = av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8), format="bgr24")
    assert private_frame(unstamped).pts is None


async def test_one_readers_encoder_leaves_the_other_readers_frame_alone() -> None:
    relay, camera = MediaRelay(), Yuv420Camera()
    first, second = (PrivateFrameTrack(relay.subscribe(camera, buffered=True)) for _ in range(2))
    vp8, h264 = Vp8Encoder(), H264Encoder()
    try:
        for index in range(5):
            mine, theirs = await asyncio.gather(first.recv(), second.recv())  # one relayed frame, two readers
            assert mine is not theirs and mine.pts == theirs.pts
            _payloads, vp8_timestamp = vp8.encode(mine)
            assert mine.time_base != TIME_BASE  # PyAV rebased the encoded frame in place...
            assert (theirs.pts, theirs.time_base) == (index * 3000, TIME_BASE)  # ...not the other reader's
            _payloads, h264_timestamp = h264.encode(theirs)
            assert h264_timestamp == index * 3000 and abs(vp8_timestamp - index * 3000) <= 1  # VP8 rounds via µs
    finally:
        first.stop()
        second.stop()
    assert first.readyState == second.readyState == "ended"
