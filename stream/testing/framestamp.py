"""Frame-index stamps drawn into pixels, and a synthetic camera that carries them.

A receiver that decodes the stamp knows exactly which source frame it is looking
at after encode, network and decode: the basis of glass-to-glass latency on one
machine. The stamp is a row of black/white 16x16 blocks near the bottom-left
corner (away from the overlay's banner and readout), with a checksum so a frame
damaged by compression is rejected rather than misread.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamTrack

from stream.media_clock import VIDEO_CLOCK_HZ, VIDEO_TIME_BASE

_BITS = 20
_CHECK_BITS = 4
_BLOCK = 16
_MARGIN = 8


def _bits(index: int) -> list[int]:
    value = index % (1 << _BITS)
    check = (value * 2654435761 >> 7) % (1 << _CHECK_BITS)
    word = (value << _CHECK_BITS) | check
    return [(word >> (_BITS + _CHECK_BITS - 1 - i)) & 1 for i in range(_BITS + _CHECK_BITS)]


def stamp_frame(image: npt.NDArray[np.uint8], index: int) -> None:
    """Draw `index` into an H x W x 3 image in place."""
    height = image.shape[0]
    y0 = height - _MARGIN - _BLOCK
    for i, bit in enumerate(_bits(index)):
        x0 = _MARGIN + i * _BLOCK
        image[y0 : y0 + _BLOCK, x0 : x0 + _BLOCK] = 255 if bit else 0


def read_stamp(image: np.ndarray) -> int | None:
    """The index stamped into `image` (H x W x 3 or H x W), or None if absent or damaged."""
    gray = image if image.ndim == 2 else image[..., 1]
    height = gray.shape[0]
    yc = height - _MARGIN - _BLOCK // 2
    bits = []
    for i in range(_BITS + _CHECK_BITS):
        xc = _MARGIN + i * _BLOCK + _BLOCK // 2
        patch = gray[yc - 4 : yc + 4, xc - 4 : xc + 4]
        if patch.size == 0:
            return None
        bits.append(1 if patch.mean() > 127 else 0)
    word = 0
    for bit in bits:
        word = (word << 1) | bit
    value = word >> _CHECK_BITS
    return value if _bits(value) == bits else None


class StampedVideoTrack(MediaStreamTrack):
    """A camera that paces frames at `fps` and stamps each with its index.

    Content comes from `make_background(index)` (a moving synthetic pattern by
    default); `sent_at[index]` records the monotonic time each frame left recv().
    """

    kind = "video"

    def __init__(
        self,
        width: int,
        height: int,
        fps: float = 30.0,
        make_background: Callable[[int], npt.NDArray[np.uint8]] | None = None,
    ) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.sent_at: dict[int, float] = {}
        self._index = 0
        self._start: float | None = None
        self._background = make_background or moving_pattern(width, height)

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        image = self._background(self._index).copy()
        stamp_frame(image, self._index)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = int(self._index * VIDEO_CLOCK_HZ / self.fps)
        frame.time_base = VIDEO_TIME_BASE
        self.sent_at[self._index] = time.monotonic()
        self._index += 1
        return frame


def moving_pattern(width: int, height: int, seed: int = 7) -> Callable[[int], npt.NDArray[np.uint8]]:
    """Random 16x16 blocks scrolling 4 px a frame: content the encoder must really code."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 215, size=(height // 16 + 2, width // 16 + 2, 3), dtype=np.uint8)
    tiles = np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1)

    def make(index: int) -> npt.NDArray[np.uint8]:
        shift = (index * 4) % 32
        return np.ascontiguousarray(tiles[shift : shift + height, shift : shift + width])

    return make


class PreEncodedStampedTrack(MediaStreamTrack):
    """The stamped camera encoded once, ahead of time, then sent as VP8 packets at `fps` (looping).

    A benchmark whose own camera encodes 720p live spends a core of a small machine on it, and then measures its own
    load instead of the server's; packets encoded in advance cost the sender almost nothing. Publish it with
    codec="VP8" (the packets are VP8). Each loop starts on a keyframe and a keyframe follows every `keyframe_every`
    frames, so a receiver that lost a packet recovers without asking this sender (which cannot make one on demand).
    `sent_at[index]` records when the packet of stamped frame `index` left recv() (most recent loop).
    """

    kind = "video"

    def __init__(self, packets: list[bytes], keyframes: set[int], fps: float) -> None:
        super().__init__()
        if not packets:
            raise ValueError("no encoded frames to send")
        self.fps = fps
        self.sent_at: dict[int, float] = {}
        self.send_log: list[tuple[int, float]] = []  # (stamp, monotonic send time) of every packet, loops included
        self.packets = packets
        self.keyframes = keyframes
        self._sent = 0
        self._start: float | None = None

    @classmethod
    def encode(
        cls,
        width: int,
        height: int,
        fps: float = 30.0,
        seconds: float = 40.0,
        bitrate: int = 1_500_000,
        keyframe_every: int = 60,
        make_background: Callable[[int], npt.NDArray[np.uint8]] | None = None,
    ) -> PreEncodedStampedTrack:
        """Encode `seconds` of the stamped pattern with libvpx (blocking: call it off the event loop)."""
        background = make_background or moving_pattern(width, height)
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.bit_rate = bitrate
        codec.time_base = VIDEO_TIME_BASE
        codec.gop_size = keyframe_every
        codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "error-resilient": "1"}
        packets: list[bytes] = []
        keyframes: set[int] = set()
        for index in range(int(seconds * fps)):
            image = background(index).copy()
            stamp_frame(image, index)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            frame.pts = int(index * VIDEO_CLOCK_HZ / fps)
            frame.time_base = VIDEO_TIME_BASE
            if index % keyframe_every == 0:
                frame.pict_type = av.video.frame.PictureType.I
            encoded = codec.encode(frame)
            if len(encoded) != 1:  # lag-in-frames 0: one packet per frame, in order
                raise RuntimeError(f"libvpx gave {len(encoded)} packets for frame {index}")
            if encoded[0].is_keyframe:
                keyframes.add(index)
            packets.append(bytes(encoded[0]))
        if 0 not in keyframes:
            raise RuntimeError("libvpx did not start on a keyframe")
        return cls(packets, keyframes, fps)

    def save(self, path: Path) -> None:
        """Write the packets (each as a 4-byte length and its bytes) for another process to send: `load`."""
        with path.open("wb") as out:
            out.write(struct.pack("<If", len(self.packets), self.fps))
            for index, packet in enumerate(self.packets):
                out.write(struct.pack("<I?", len(packet), index in self.keyframes))
                out.write(packet)

    @classmethod
    def load(cls, path: Path) -> PreEncodedStampedTrack:
        data = path.read_bytes()
        count, fps = struct.unpack_from("<If", data)
        offset = struct.calcsize("<If")
        packets: list[bytes] = []
        keyframes: set[int] = set()
        for index in range(count):
            size, key = struct.unpack_from("<I?", data, offset)
            offset += struct.calcsize("<I?")
            packets.append(data[offset : offset + size])
            offset += size
            if key:
                keyframes.add(index)
        if offset != len(data):
            raise ValueError(f"{path}: not a file written by PreEncodedStampedTrack.save")
        return cls(packets, keyframes, fps)

    async def recv(self) -> av.Packet[Any]:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._sent / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        index = self._sent % len(self.packets)
        packet = av.Packet(self.packets[index])
        packet.pts = int(self._sent * VIDEO_CLOCK_HZ / self.fps)
        packet.time_base = VIDEO_TIME_BASE
        self.sent_at[index] = time.monotonic()
        self.send_log.append((index, self.sent_at[index]))
        self._sent += 1
        return packet
