"""Synthetic wound photos with a drawn ArUco marker of exactly known pixel size."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SKIN = (225, 180, 160)
RED = (180, 40, 50)  # granulation
YELLOW = (220, 200, 100)  # slough
BLACK = (35, 25, 20)  # necrotic
REDDENED = (225, 120, 115)  # erythematous skin

SRC = 600  # marker rendered at this size, then warped into the photo


@dataclass
class Scene:
    rgb: np.ndarray
    mask: np.ndarray
    mm_per_px: float  # truth
    marker_side_px: float


def skin_photo(w: int = 800, h: int = 600, seed: int = 0, colour=SKIN, noise: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = colour
    # A gentle lighting gradient, as in a real photo.
    img *= np.linspace(0.95, 1.03, w, dtype=np.float32)[None, :, None]
    img += rng.normal(0, noise, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def place_marker(
    img: np.ndarray,
    centre: tuple[float, float],
    side_px: float,
    angle_deg: float = 0.0,
    tilt: float = 1.0,
    marker_id: int = 7,
) -> None:
    """Paste a marker (black square = side_px) on white paper; tilt < 1 squashes one axis (steep view)."""
    d = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50)
    m = cv2.aruco.generateImageMarker(d, marker_id, SRC)
    pad = SRC // 2
    paper = np.full((SRC + 2 * pad, SRC + 2 * pad), 250, np.uint8)
    paper[pad : pad + SRC, pad : pad + SRC] = m
    s = side_px / SRC
    t = math.radians(angle_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    lin = rot @ np.diag([s, s * tilt])
    # Source pixel centres are integers, so the black square spans [pad-0.5, pad+SRC-0.5].
    src_c = np.array([pad + SRC / 2 - 0.5, pad + SRC / 2 - 0.5])
    off = np.asarray(centre) - lin @ src_c
    M = np.hstack([lin, off[:, None]])
    h, w = img.shape[:2]
    warped = cv2.warpAffine(paper, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    cover = cv2.warpAffine(np.ones_like(paper, np.float32), M, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    cover = cover[..., None]
    img[:] = np.clip(img * (1 - cover) + warped[..., None].astype(np.float32) * cover, 0, 255).astype(np.uint8)


def ellipse_mask(
    shape: tuple[int, int], centre: tuple[float, float], axes: tuple[float, float], angle: float = 0.0
) -> np.ndarray:
    """Pixels whose centre lies inside the ellipse: an unbiased raster of area pi*a*b."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    t = math.radians(angle)
    dx, dy = xx - centre[0], yy - centre[1]
    u = dx * math.cos(t) + dy * math.sin(t)
    v = -dx * math.sin(t) + dy * math.cos(t)
    return (u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1.0


def paint(img: np.ndarray, mask: np.ndarray, colour, noise: float = 5.0, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    n = int(mask.sum())
    img[mask] = np.clip(np.asarray(colour, np.float32) + rng.normal(0, noise, (n, 3)), 0, 255).astype(np.uint8)


def wound_scene(
    *,
    marker_px: float = 100.0,
    marker_mm: float = 20.0,
    angle: float = 0.0,
    tilt: float = 1.0,
    axes: tuple[float, float] = (110.0, 65.0),
    seed: int = 0,
    with_marker: bool = True,
    w: int = 800,
    h: int = 600,
) -> Scene:
    img = skin_photo(w, h, seed)
    if with_marker:
        place_marker(img, (w * 0.8, h * 0.25), marker_px, angle, tilt)
    mask = ellipse_mask((h, w), (w * 0.4, h * 0.55), axes, angle=20)
    paint(img, mask, RED, seed=seed + 1)
    return Scene(img, mask, marker_mm / marker_px, marker_px)
