"""Fixtures for perception tests (helpers live in perception_testutil.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("onnx")
from perception_testutil import TOY_META, make_onnx  # noqa: E402


@pytest.fixture
def toy_onnx(tmp_path: Path) -> Path:
    return make_onnx(tmp_path / "toy.onnx", sidecar=TOY_META)


@pytest.fixture
def onnx_factory(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def build(**kwargs) -> Path:
        return make_onnx(tmp_path / f"m{next(counter)}.onnx", **kwargs)

    return build
