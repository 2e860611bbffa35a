"""Build the configured backend from a small config; `grounded` when nothing is configured."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from perception.vlm.base import VlmBackend


class VlmConfig(BaseModel):
    """Which VLM answers questions. Defaults give the findings-only answerer."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["grounded", "transformers", "openai"] = "grounded"
    model_path: str | None = None  # transformers: local checkpoint folder
    base_url: str | None = None  # openai: e.g. http://127.0.0.1:8000/v1
    model: str | None = None  # openai: model name the server expects
    api_key: str | None = None
    timeout_s: float = Field(60.0, gt=0)
    max_new_tokens: int = Field(256, ge=1, le=8192)
    queue_size: int = Field(4, ge=0, le=1000)
    send_image: bool = True  # openai: off for text-only servers
    use_embeddings: bool = True  # grounded: MiniLM intent matching (keywords if off/not installed)

    @model_validator(mode="after")
    def _consistent(self) -> VlmConfig:
        if self.backend == "transformers" and not self.model_path:
            raise ValueError("backend 'transformers' needs model_path (a local checkpoint folder)")
        if self.backend == "openai":
            missing = [n for n in ("base_url", "model") if not getattr(self, n)]
            if missing:
                raise ValueError(f"backend 'openai' needs {' and '.join(missing)}")
            if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
                raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        unused = {
            "grounded": ("model_path", "base_url", "model", "api_key"),
            "transformers": ("base_url", "model", "api_key"),
            "openai": ("model_path",),
        }[self.backend]
        set_unused = [n for n in unused if getattr(self, n)]
        if set_unused:
            # Likely a typo in the backend name; silently ignoring would run the wrong model.
            raise ValueError(f"backend '{self.backend}' does not use {', '.join(set_unused)}")
        return self


def create_vlm(config: VlmConfig | dict[str, Any] | None = None) -> VlmBackend:
    """The backend for `config`. Loading a transformers model blocks: call at start-up."""
    cfg = config if isinstance(config, VlmConfig) else VlmConfig.model_validate(config or {})
    if cfg.backend == "grounded":
        from perception.vlm.grounded import GroundedBackend

        return GroundedBackend(use_embeddings=cfg.use_embeddings)
    if cfg.backend == "transformers":
        from perception.vlm.transformers_local import TransformersBackend

        assert cfg.model_path is not None  # VlmConfig's validator requires it for this backend
        return TransformersBackend(
            cfg.model_path, max_new_tokens=cfg.max_new_tokens, queue_size=cfg.queue_size, timeout_s=cfg.timeout_s
        )
    from perception.vlm.openai_compat import OpenAICompatBackend

    assert cfg.base_url is not None and cfg.model is not None  # VlmConfig's validator requires both for openai
    return OpenAICompatBackend(
        cfg.base_url,
        cfg.model,
        api_key=cfg.api_key,
        timeout_s=cfg.timeout_s,
        max_new_tokens=cfg.max_new_tokens,
        send_image=cfg.send_image,
    )
