"""``mask_components`` finds exactly the components ``connectedComponentsWithStats`` labels (8-connected)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from perception.segmentation_model import mask_components


def labelled_components(mask: np.ndarray, min_area: float, max_objects: int) -> list[tuple[int, tuple, bytes]]:
    """The reference: (area, box, the component's own pixels in its box) by OpenCV's labelling, largest first and
    ties in raster order of their first pixel (label numbers follow the labelling's parallel stripes, not raster)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
    comps = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area >= min_area:
            first_x = x + int(np.argmax(labels[y, x : x + w] == i))
            comps.append(((-area, y, first_x), (area, (x, y, w, h), (labels[y : y + h, x : x + w] == i).tobytes())))
    comps.sort(key=lambda c: c[0])
    return [c for _, c in comps[:max_objects]]


def traced(mask: np.ndarray, min_area: float, max_objects: int) -> list[tuple[int, tuple, bytes]]:
    return [(c.area, (c.x, c.y, c.w, c.h), c.pixels.tobytes()) for c in mask_components(mask, min_area, max_objects)]


def ring_with_island() -> np.ndarray:
    m = np.zeros((120, 160), np.uint8)
    cv2.circle(m, (80, 60), 45, 1, thickness=-1)
    cv2.circle(m, (80, 60), 30, 0, thickness=-1)  # the hole
    cv2.circle(m, (80, 60), 10, 1, thickness=-1)  # another component inside the hole
    cv2.rectangle(m, (0, 0), (5, 5), 1, thickness=-1)  # touching the border
    m[100, 150] = 1  # a single pixel
    m[110:112, 10:12] = np.eye(2, dtype=np.uint8)  # diagonal neighbours: one component under 8-connectivity
    return m


def random_blobs(seed: int, shape: tuple[int, int] = (288, 512)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(size=shape).astype(np.float32), (0, 0), sigmaX=float(rng.uniform(1, 8)))
    return (noise > np.quantile(noise, rng.uniform(0.6, 0.97))).astype(np.uint8)


@pytest.mark.parametrize("seed", range(12))
def test_same_components_as_labelling_on_random_masks(seed):
    mask = random_blobs(seed)
    for min_area, max_objects in ((1, 10_000), (40, 16), (500, 3)):
        assert traced(mask, min_area, max_objects) == labelled_components(mask, min_area, max_objects)


def test_rings_islands_borders_and_diagonals():
    mask = ring_with_island()
    got = traced(mask, 1, 100)
    assert got == labelled_components(mask, 1, 100)
    assert len(got) == 5  # ring, island, corner square, single pixel, diagonal pair
    ring = mask_components(mask, 1, 100)[0]
    assert ring.area == int(np.count_nonzero(mask)) - got[1][0] - 36 - 1 - 2  # the island is not part of the ring


def test_empty_and_full_masks():
    assert mask_components(np.zeros((20, 30), np.uint8), 1, 5) == []
    (full,) = mask_components(np.ones((20, 30), np.uint8), 1, 5)
    assert (full.x, full.y, full.w, full.h, full.area) == (0, 0, 30, 20, 600) and full.pixels.all()
