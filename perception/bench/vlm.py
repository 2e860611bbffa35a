"""Time to first token and generation speed per VLM backend.

    scopecast bench vlm [--model-path DIR] [--base-url URL --model NAME] [--runs 3] [--max-new-tokens 64] [--json FILE]

grounded always; transformers on a tiny random LLaVA unless --model-path is
given (so the number measures the pipeline overhead, not a real model);
openai only with --base-url. "pieces/s" counts streamed pieces (words for
grounded, SSE chunks ≈ tokens for servers); tok/s is exact for transformers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perception.findings import Finding, FrameFindings, ModelInfo
from perception.vlm.base import AskRequest, VlmBackend

QUESTION = "Describe this frame."


def sample_request() -> AskRequest:
    img = np.zeros((480, 640, 3), np.uint8)
    img[40:200, 40:240] = (180, 60, 60)
    ff = FrameFindings(
        ModelInfo("wound-seg", "1", labels=("wound",)),
        (640, 480),
        (Finding("wound", 0.9, (40, 40, 240, 200), area_px=25000),),
    )
    return AskRequest(QUESTION, image=img, findings=ff)


async def time_backend(backend: VlmBackend, runs: int) -> dict[str, Any]:
    req = sample_request()
    ttft, rates, tok_rates = [], [], []
    async for _ in backend.answer(req):  # warm-up: model load, caches, JIT
        pass
    for _ in range(runs):
        t0 = time.perf_counter()
        first = None
        n = 0
        async for _ in backend.answer(req):
            if first is None:
                first = time.perf_counter() - t0
            n += 1
        total = time.perf_counter() - t0
        ttft.append(first or total)
        rates.append(n / max(total - (first or 0), 1e-9))
        stats = getattr(backend, "last_generation", None)
        if stats is not None and stats.first_token_s is not None:
            tok_rates.append((stats.tokens - 1) / max(stats.total_s - stats.first_token_s, 1e-9))
    out = {"ttft_ms": 1000 * statistics.median(ttft), "pieces_per_s": statistics.median(rates)}
    if tok_rates:
        out["tokens_per_s"] = statistics.median(tok_rates)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="scopecast bench vlm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model-path")
    ap.add_argument("--base-url")
    ap.add_argument("--model", default="model")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args(argv)
    from perception.vlm.factory import VlmConfig, create_vlm

    results: dict[str, dict[str, Any]] = {}
    results["grounded"] = asyncio.run(time_backend(create_vlm(), args.runs))
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model_path
        if path is None:
            from perception.vlm.testing import save_tiny_llava

            path = str(save_tiny_llava(Path(tmp) / "tiny-llava"))
        backend = create_vlm(VlmConfig(backend="transformers", model_path=path, max_new_tokens=args.max_new_tokens))
        results["transformers"] = asyncio.run(time_backend(backend, args.runs))
        results["transformers"]["model"] = "tiny random LLaVA" if args.model_path is None else path
        results["transformers"]["device"] = backend.device  # type: ignore[attr-defined]  # a TransformersBackend here
    if args.base_url:
        backend = create_vlm(
            VlmConfig(backend="openai", base_url=args.base_url, model=args.model, max_new_tokens=args.max_new_tokens)
        )
        results["openai"] = asyncio.run(time_backend(backend, args.runs))
    for name, r in results.items():
        extra = f" tok/s={r['tokens_per_s']:.1f}" if "tokens_per_s" in r else ""
        print(f"{name:12s} ttft={r['ttft_ms']:.1f} ms pieces/s={r['pieces_per_s']:.1f}{extra}", file=sys.stdout)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
