"""Turn uploaded bytes into a clean, checked photo: prove it is an image, refuse bombs, strip all metadata, check quality.

Pure CPU work with no I/O besides the bytes given: callers run it in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from telehealth.errors import PhotoRejected

# Registering the HEIF opener only adds a decoder to Pillow's table; doing it twice is harmless.
pillow_heif.register_heif_opener()

ACCEPTED_FORMATS = ("JPEG", "PNG", "HEIF")
STORED_MEDIA_TYPE = "image/jpeg"
_QUALITY_SIDE = 512  # blur and brightness are measured at a fixed size so thresholds do not depend on resolution


@dataclass(frozen=True)
class IntakeLimits:
    max_bytes: int
    max_pixels: int
    min_brightness: float
    min_sharpness: float
    jpeg_quality: int = 92


@dataclass(frozen=True)
class CleanPhoto:
    """Pixels only, re-encoded as JPEG: no EXIF, GPS, XMP, ICC or comments survive."""

    data: bytes
    sha256: str
    width: int
    height: int
    media_type: str = STORED_MEDIA_TYPE


def megabytes(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def check_size(byte_count: int, max_bytes: int) -> None:
    if byte_count > max_bytes:
        raise PhotoRejected(413, f"too large: {megabytes(byte_count)} over {max_bytes / 1_000_000:g} MB")


def decode(data: bytes, max_pixels: int) -> Image.Image:
    """Fully decode, so a file that only looks like an image (right magic bytes, broken body) is refused too."""
    if not data:
        raise PhotoRejected(415, "not an image: the file is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise PhotoRejected(415, "not an image: the file is not a JPEG, PNG or HEIC picture") from None
    except Image.DecompressionBombError:
        raise PhotoRejected(413, "image has too many pixels (decompression bomb refused)") from None
    # The header's size is checked before any pixel is decoded: this is the decompression-bomb guard. Pillow's
    # own process-wide MAX_IMAGE_PIXELS stays as a second net (its DecompressionBombError is caught above and below).
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise PhotoRejected(413, f"image has too many pixels: {pixels / 1e6:.1f} MP over {max_pixels / 1e6:g} MP")
    try:
        image.load()
    except Image.DecompressionBombError:
        raise PhotoRejected(413, "image has too many pixels (decompression bomb refused)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoRejected(415, f"not an image: the {image.format} data is truncated or corrupt") from exc
    return image


def to_clean_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB pixels in a brand-new image, so no metadata of the upload can ride along."""
    upright = ImageOps.exif_transpose(image)
    if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info):
        rgba = upright.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(background, rgba).convert("RGB")
    else:
        rgb = upright.convert("RGB")
    return Image.frombytes("RGB", rgb.size, rgb.tobytes())


def quality_problem(rgb: Image.Image, min_brightness: float, min_sharpness: float) -> str | None:
    small = rgb.copy()
    small.thumbnail((_QUALITY_SIDE, _QUALITY_SIDE))
    gray = np.asarray(small.convert("L"))
    if float(gray.mean()) < min_brightness:
        return "too dark, please retake"
    if float(cv2.Laplacian(gray, cv2.CV_64F).var()) < min_sharpness:
        return "too blurred, please retake"
    return None


def encode_jpeg(rgb: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def clean_photo(data: bytes, limits: IntakeLimits) -> CleanPhoto:
    """Run every check and return the photo to store, or raise PhotoRejected with the reason."""
    check_size(len(data), limits.max_bytes)
    with decode(data, limits.max_pixels) as image:
        rgb = to_clean_rgb(image)
    problem = quality_problem(rgb, limits.min_brightness, limits.min_sharpness)
    if problem is not None:
        raise PhotoRejected(422, problem)
    encoded = encode_jpeg(rgb, limits.jpeg_quality)
    return CleanPhoto(encoded, hashlib.sha256(encoded).hexdigest(), rgb.width, rgb.height)


def thumbnail_jpeg(data: bytes, side: int) -> bytes:
    with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
        image.draft("RGB", (side, side))  # let libjpeg decode at reduced scale: thumbnails stay cheap
        small = image.convert("RGB")
    small.thumbnail((side, side))
    return encode_jpeg(small, 80)
