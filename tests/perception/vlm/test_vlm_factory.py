from __future__ import annotations

import pytest
from pydantic import ValidationError

from perception.vlm import VlmBackend, VlmUnavailable
from perception.vlm.factory import VlmConfig, create_vlm


def test_default_is_grounded():
    backend = create_vlm()
    assert isinstance(backend, VlmBackend) and backend.info.backend == "grounded"


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"backend": "transformers"}, "needs model_path"),
        ({"backend": "openai", "model": "m"}, "needs base_url"),
        ({"backend": "openai", "base_url": "localhost:8000"}, "needs model"),
        ({"backend": "openai", "base_url": "localhost:8000", "model": "m"}, "must start with http"),
        ({"backend": "grounded", "model_path": "/x"}, "does not use model_path"),
        ({"backend": "llava"}, "backend"),
        ({"backend": "grounded", "modle_path": "/x"}, "Extra inputs"),
        ({"max_new_tokens": 0}, "greater than or equal to 1"),
    ],
)
def test_inconsistent_config(cfg, message):
    with pytest.raises(ValidationError, match=message):
        VlmConfig.model_validate(cfg)


def test_builds_other_backends(tmp_path):
    b = create_vlm({"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"})
    assert b.info.backend == "openai"
    with pytest.raises(VlmUnavailable, match="does not exist"):
        create_vlm({"backend": "transformers", "model_path": str(tmp_path / "missing")})
