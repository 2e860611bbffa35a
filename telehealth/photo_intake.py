"""Turn uploaded bytes into a clean, checked photo: prove it is an image, refuse bombs, strip all metadata, check quality.

Pure CPU work with no I/O besides the bytes given: callers run it in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.JpegImagePlugin import JpegImageFile

from telehealth.decode_budget import JPEG_SCALES, DecodeCost, decode_cost, scaled_size
from telehealth.errors import PhotoRejected

# Registering the HEIF opener only adds a decoder to Pillow's table; doing it twice is harmless.
pillow_heif.register_heif_opener()

ACCEPTED_FORMATS = ("JPEG", "PNG", "HEIF")
STORED_MEDIA_TYPE = "image/jpeg"
DEFAULT_MAX_DECODED_BYTES = 100_000_000
_QUALITY_SIDE = 512  # blur and brightness are measured at a fixed size so thresholds do not depend on resolution
_WHITE = (255, 255, 255)
# What Pillow's parsers and decoders raise for a file that starts like an image and then breaks: short reads
# ("Truncated File Read", "image file is truncated"), bad chunks and markers, broken zlib or HEIF streams.
_BROKEN_FILE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
)
# Magic bytes, only to name the format of a file Pillow could not even open.
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"))


@dataclass(frozen=True)
class IntakeLimits:
    max_bytes: int
    max_pixels: int
    min_brightness: float
    min_sharpness: float
    jpeg_quality: int = 92
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    min_side: int = 200  # pixels on the shorter side: below it a photo cannot show a wound and its marker


@dataclass(frozen=True)
class CleanPhoto:
    """Pixels only, re-encoded as JPEG: no EXIF, GPS, XMP, ICC or comments survive."""

    data: bytes
    sha256: str
    width: int
    height: int
    media_type: str = STORED_MEDIA_TYPE
    taken_at: datetime | None = None  # the camera's own date (EXIF DateTimeOriginal), read before the EXIF is dropped


def megabytes(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def check_size(byte_count: int, max_bytes: int) -> None:
    if byte_count > max_bytes:
        raise PhotoRejected(413, f"too large: {megabytes(byte_count)} over {max_bytes / 1_000_000:g} MB")


def _sniffed_format(data: bytes) -> str:
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return "HEIC" if data[4:8] == b"ftyp" else "image"


def incomplete(what: str) -> PhotoRejected:
    return PhotoRejected(422, f"not a complete image: the {what} data is truncated or corrupt")


def open_image(data: bytes) -> Image.Image:
    """Parse the header only; no pixel is decoded yet."""
    if not data:
        raise PhotoRejected(415, "not an image: the file is empty")
    try:
        return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise PhotoRejected(415, "not an image: the file is not a JPEG, PNG or HEIC picture") from None
    except Image.DecompressionBombError:
        raise PhotoRejected(413, "image has too many pixels (decompression bomb refused)") from None
    except _BROKEN_FILE_ERRORS:
        # Pillow recognised the format, then the header ran out or broke: a cut-off upload, most often.
        raise incomplete(_sniffed_format(data)) from None


def _too_big(cost: DecodeCost, limit: int) -> PhotoRejected:
    width, height = cost.size
    return PhotoRejected(
        413,
        f"image too large to decode: {width}x{height} {cost.mode} needs {cost.total / 1e6:.0f} MB of memory, "
        f"over the {limit / 1e6:g} MB limit",
    )


def fit_decode(image: Image.Image, limits: IntakeLimits) -> None:
    """Refuse, from the header, an image too small to use, or whose decode would not fit the pixel limit and the
    memory budget; a JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) when that is what makes it fit."""
    if min(image.size) < limits.min_side:
        # Said before any other quality check: a thumbnail's few pixels would otherwise read as "too dark".
        raise PhotoRejected(
            422,
            f"too small: {image.width}x{image.height} pixels, at least {limits.min_side} on each side; send the "
            "camera's photo, not a thumbnail or a screenshot",
        )
    full = decode_cost(image)
    scales = JPEG_SCALES if isinstance(image, JpegImageFile) and min(image.size) >= max(JPEG_SCALES) else (1,)
    for scale in scales:
        size = scaled_size(image.size, scale)
        if size[0] * size[1] <= limits.max_pixels and decode_cost(image, size).total <= limits.max_decoded_bytes:
            break
    else:
        smallest = scaled_size(image.size, scales[-1])
        pixels = smallest[0] * smallest[1]
        if pixels > limits.max_pixels:
            full_pixels = image.width * image.height
            raise PhotoRejected(
                413, f"image has too many pixels: {full_pixels / 1e6:.1f} MP over {limits.max_pixels / 1e6:g} MP"
            )
        raise _too_big(full, limits.max_decoded_bytes)
    if scale > 1:
        image.draft(None, (image.width // scale, image.height // scale))
        # Trust the header arithmetic only as far as the result: check what draft actually chose.
        chosen = decode_cost(image, image.size)
        if image.width * image.height > limits.max_pixels or chosen.total > limits.max_decoded_bytes:
            raise _too_big(full, limits.max_decoded_bytes)


def decode(data: bytes, limits: IntakeLimits) -> Image.Image:
    """Fully decode within the limits, so a file that only looks like an image (right magic bytes, broken body) is
    refused too. Pillow's own MAX_IMAGE_PIXELS stays as a second net (its DecompressionBombError is caught)."""
    image = open_image(data)
    try:
        fit_decode(image, limits)
        image.load()
    except Image.DecompressionBombError:
        image.close()
        raise PhotoRejected(413, "image has too many pixels (decompression bomb refused)") from None
    except _BROKEN_FILE_ERRORS:
        image.close()
        raise incomplete(image.format or _sniffed_format(data)) from None
    except BaseException:
        image.close()
        raise
    return image


_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011


def camera_time(image: Image.Image) -> datetime | None:
    """When the camera says the photo was taken, in UTC; None when it does not say, or says something implausible.

    Phones write the local time and, mostly, its UTC offset; without an offset the time is taken as UTC, which can
    move a photo taken near midnight to the next or previous day (a GP can correct the date).
    """
    try:
        exif = image.getexif().get_ifd(_EXIF_IFD)
        stamp, offset = exif.get(_DATETIME_ORIGINAL), exif.get(_OFFSET_TIME_ORIGINAL)
        if not isinstance(stamp, str):
            return None
        local = datetime.strptime(stamp.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
        zone = UTC
        if isinstance(offset, str) and re.fullmatch(r"[+-]\d\d:\d\d", offset.strip("\x00 ")):
            sign = -1 if offset.startswith("-") else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        taken = local.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, TypeError, KeyError, OSError):
        return None  # a malformed EXIF date is no date: the upload time stands in
    if taken.year < 1990 or taken > datetime.now(UTC) + timedelta(days=1):
        return None
    return taken


def to_clean_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB pixels in a new image, so no metadata of the upload can ride along.

    Each step makes at most one new full-size image, and the caller drops the decoded one right after, so the peak
    is the decoded image plus one RGB copy (plus an RGBA one for palette transparency)."""
    try:
        ImageOps.exif_transpose(image, in_place=True)  # no copy when the photo is upright already
    except _BROKEN_FILE_ERRORS:
        raise PhotoRejected(422, "not a complete image: its EXIF orientation data is corrupt") from None
    if image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        # Over white, as alpha_composite would do, but straight into the RGB result: no RGBA background copy.
        rgb = Image.new("RGB", image.size, _WHITE)
        rgb.paste(image, mask=image)
    else:
        rgb = image.convert("RGB")  # a copy even when the mode is RGB already
    # convert() carries the source's info dict (the JPEG encoder would write its "comment"): start from nothing.
    rgb.info = {}
    return rgb


def _quality_size(size: tuple[int, int], side: int) -> tuple[int, int] | None:
    """The size Image.thumbnail((side, side)) picks (None: already small enough), so the quality thresholds, tuned
    on thumbnails, still hold; resizing to it directly spares thumbnail()'s full-size copy."""
    width, height = size
    x, y = min(side, width), min(side, height)
    if x >= width and y >= height:
        return None
    aspect = width / height

    def round_aspect(number: float, key: Callable[[int], float]) -> int:
        return max(min(math.floor(number), math.ceil(number), key=key), 1)

    if x / y >= aspect:
        x = round_aspect(y * aspect, key=lambda n: abs(aspect - n / y))
    else:
        y = round_aspect(x / aspect, key=lambda n: 0 if n == 0 else abs(aspect - x / n))
    return x, y


@dataclass(frozen=True)
class Quality:
    brightness: float  # mean luminance, 0-255
    sharpness: float  # variance of the Laplacian


def measure_quality(rgb: Image.Image) -> Quality:
    """Brightness and sharpness at most 512 px on the long side, where the thresholds were tuned: the one
    measure for uploads and for the patient page's live checks, so a frame that passes one passes the other."""
    size = _quality_size(rgb.size, _QUALITY_SIDE)
    small = rgb if size is None else rgb.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    gray = np.asarray(small.convert("L"))  # at most 512x512: the numpy and float64 arrays below stay ~2 MB
    return Quality(float(gray.mean()), float(cv2.Laplacian(gray, cv2.CV_64F).var()))


def quality_problem(rgb: Image.Image, min_brightness: float, min_sharpness: float) -> str | None:
    quality = measure_quality(rgb)
    if quality.brightness < min_brightness:
        return "too dark, please retake"
    if quality.sharpness < min_sharpness:
        return "too blurred, please retake"
    return None


def encode_jpeg(rgb: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def clean_photo(data: bytes, limits: IntakeLimits) -> CleanPhoto:
    """Run every check and return the photo to store, or raise PhotoRejected with the reason."""
    check_size(len(data), limits.max_bytes)
    with decode(data, limits) as image:
        taken_at = camera_time(image)
        rgb = to_clean_rgb(image)
    problem = quality_problem(rgb, limits.min_brightness, limits.min_sharpness)
    if problem is not None:
        raise PhotoRejected(422, problem)
    encoded = encode_jpeg(rgb, limits.jpeg_quality)
    return CleanPhoto(encoded, hashlib.sha256(encoded).hexdigest(), rgb.width, rgb.height, taken_at=taken_at)


def thumbnail_jpeg(data: bytes, side: int) -> bytes:
    with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
        image.draft("RGB", (side, side))  # let libjpeg decode at reduced scale: thumbnails stay cheap
        small = image.convert("RGB")
    small.thumbnail((side, side))
    return encode_jpeg(small, 80)
