"""What decoding an image will cost in memory, worked out from its header before any pixel is decoded.

The pixel limit alone is no bomb guard: a 170 KB all-black PNG of 6300x6300 RGBA is under 40 MP yet decodes to
159 MB. So the cost counts what memory really holds: Pillow keeps every multi-band 8-bit mode (RGB included) at 4
bytes a pixel and single-band ones at their sample size; the photo always becomes an RGB copy, so it costs at least
that; Pillow also keeps a pointer per row (8 bytes: a 1 x 10 000 000 image is 80 MB of pointers before any pixel);
and decoders add buffers of their own (a progressive JPEG keeps the DCT coefficients of the whole image, libheif
a decoded frame next to Pillow's). Figures measured with VmHWM on Pillow 13 / pillow-heif 1.8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageMode
from PIL.JpegImagePlugin import JpegImageFile

RGB_BYTES_PER_PIXEL = 4
_ROW_POINTER_BYTES = 8
# libheif decodes into its own interleaved frame (and YUV planes) before Pillow copies it: measured 3.9 B/px extra.
_HEIF_FRAME_BYTES_PER_PIXEL = 4
_JPEG_COEFFICIENT_BYTES = 2  # a JCOEF is a 16-bit integer, 64 of them per 8x8 block
JPEG_SCALES = (1, 2, 4, 8)  # the reductions libjpeg decodes at directly (DCT scaling, Pillow's draft())


def bytes_per_pixel(mode: str) -> int:
    described = ImageMode.getmode(mode)
    if len(described.bands) > 1:
        return 4
    return int(described.typestr[-1])  # "|u1", "<u2", "<i4", "<f4", "|b1" (mode "1" is one byte a pixel)


def scaled_size(size: tuple[int, int], scale: int) -> tuple[int, int]:
    """The size libjpeg produces at 1/scale (rounding up, as Pillow's draft does)."""
    return (-(-size[0] // scale), -(-size[1] // scale))


def _jpeg_coefficient_bytes(image: JpegImageFile) -> int:
    """A progressive JPEG's whole-image coefficient buffers; a baseline one decodes a row of blocks at a time."""
    if not (image.info.get("progressive") or image.info.get("progression")) or not image.layer:
        return 0
    h_max = max(h for _id, h, _v, _q in image.layer) or 1
    v_max = max(v for _id, _h, v, _q in image.layer) or 1
    width, height = image.size  # the header's size: draft() scales the output, not the coefficients
    blocks = sum(
        math.ceil(width * h / (8 * h_max)) * math.ceil(height * v / (8 * v_max)) for _id, h, v, _q in image.layer
    )
    return blocks * 64 * _JPEG_COEFFICIENT_BYTES


@dataclass(frozen=True)
class DecodeCost:
    size: tuple[int, int]
    mode: str
    pixel_bytes: int  # the decoded image (or the RGB copy it becomes, when that is larger) and its row pointers
    decoder_bytes: int  # what the decoder holds beside it while decoding

    @property
    def total(self) -> int:
        return self.pixel_bytes + self.decoder_bytes


def decode_cost(image: Image.Image, size: tuple[int, int] | None = None) -> DecodeCost:
    """The memory decoding `image` (opened, not loaded) at `size` (default: its header size) will take."""
    width, height = size or image.size
    pixels = width * height
    pixel_bytes = (width * max(bytes_per_pixel(image.mode), RGB_BYTES_PER_PIXEL) + _ROW_POINTER_BYTES) * height
    if isinstance(image, JpegImageFile):
        decoder = _jpeg_coefficient_bytes(image)
    elif image.format == "HEIF":
        decoder = pixels * _HEIF_FRAME_BYTES_PER_PIXEL
    else:
        decoder = 0
    return DecodeCost((width, height), image.mode, pixel_bytes, decoder)
