"""The one image check: each problem named, the smallest side honoured, and what the three callers need from it."""

from __future__ import annotations

import numpy as np
import pytest

from perception.image_check import ImageCheckError, check_rgb_image


@pytest.mark.parametrize(
    "image, problem, words",
    [
        ([[0, 0, 0]], "type", "photo must be a numpy array, got list"),
        (np.zeros((20, 20), np.uint8), "layout", "photo must be H x W x 3 (RGB), got shape (20, 20)"),
        (np.zeros((20, 20, 4), np.uint8), "layout", "got shape (20, 20, 4)"),
        (np.zeros((20, 20, 3), np.float32), "dtype", "photo must be uint8, got float32"),
        (np.zeros((15, 40, 3), np.uint8), "size", "photo is too small: 40x15 (minimum 16x16)"),
    ],
)
def test_each_problem_is_named(image, problem, words):
    with pytest.raises(ImageCheckError) as err:
        check_rgb_image(image, what="photo", min_side=16)
    assert err.value.problem == problem and words in str(err.value)
    assert isinstance(err.value, ValueError)  # callers that catch ValueError (telehealth's photo intake) still do


def test_a_good_image_comes_back_unchanged_and_min_side_one_means_not_empty():
    image = np.zeros((16, 16, 3), np.uint8)
    assert check_rgb_image(image, what="photo", min_side=16) is image
    with pytest.raises(ImageCheckError, match="image is empty"):
        check_rgb_image(np.zeros((0, 4, 3), np.uint8), what="image", min_side=1)
    with pytest.raises(ImageCheckError, match="H×W×3 RGB"):
        check_rgb_image(np.zeros((4, 4), np.uint8), what="image", layout="H×W×3 RGB")


def test_the_frame_and_vlm_checks_keep_their_error_types():
    from perception.model import ModelError, check_frame
    from perception.vlm.base import InvalidImage, validate_image

    with pytest.raises(ModelError, match=r"frame is too small: 7x8 \(minimum 8x8\)"):
        check_frame(np.zeros((8, 7, 3), np.uint8))
    with pytest.raises(InvalidImage, match="image must be uint8"):
        validate_image(np.zeros((4, 4, 3), np.int16))
    assert validate_image(None) is None
