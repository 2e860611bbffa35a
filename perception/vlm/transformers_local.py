"""Local backend: any image-text-to-text checkpoint in a folder, run with
transformers (`AutoProcessor` + `AutoModelForImageTextToText`).

Generation runs in a worker thread (never on the event loop) and streams
through `TextIteratorStreamer`. One generation per device at a time: a second
concurrent generation would just halve the speed of both and double memory,
so requests wait in a small bounded queue and past it get `VlmBusy`.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perception.vlm.base import AskRequest, ReportContext, VlmBusy, VlmError, VlmInfo, VlmUnavailable, collect
from perception.vlm.prompts import build_messages, build_report_messages
from perception.vlm.report import ReportDraft, draft_from_llm_text

if TYPE_CHECKING:  # torch and transformers are the vlm extra: imported when a backend is built
    import torch
    from transformers import PreTrainedTokenizerBase


@dataclass
class _DeviceSlot:
    """The one generation slot of a device and the count of requests queued for it.

    Shared by every backend instance in the process: two models on one GPU
    must not generate at the same time either, and the queue bound is per device.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    waiting: int = 0


_slots: dict[str, _DeviceSlot] = {}
_slots_guard = threading.Lock()


def _device_slot(device: str) -> _DeviceSlot:
    with _slots_guard:
        return _slots.setdefault(device, _DeviceSlot())


def waiting_on(device: str) -> int:
    """Requests queued for `device` right now."""
    return _device_slot(device).waiting


@dataclass
class GenerationStats:
    """What the last generation did; read by the bench and by tests."""

    tokens: int = 0
    first_token_s: float | None = None
    total_s: float = 0.0
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)


def check_vlm_folder(path: Path) -> Any:
    """The checkpoint's config, or `VlmUnavailable` saying why the folder is unusable."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if not path.exists():
        raise VlmUnavailable(f"VLM model path {path} does not exist")
    if not (path / "config.json").is_file():
        raise VlmUnavailable(f"VLM model path {path} has no config.json: not a transformers checkpoint folder")
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise VlmUnavailable(f"cannot read the model config in {path}: {exc}") from exc
    if config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise VlmUnavailable(
            f"{path} is not a vision-language model: model_type '{config.model_type}' cannot take images "
            "(use the openai backend with send_image off, or an image-text-to-text checkpoint)"
        )
    return config


class TransformersBackend:
    """`VlmBackend` over a local checkpoint folder. Loading blocks; do it at start-up."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        max_new_tokens: int = 256,
        report_max_new_tokens: int | None = None,
        queue_size: int = 4,
        device: str | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.path = Path(model_path).expanduser()
        config = check_vlm_folder(self.path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # bf16 on GPU halves memory at no quality cost for inference; CPU kernels want fp32.
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            self.processor = AutoProcessor.from_pretrained(str(self.path), local_files_only=True)
            self.model = AutoModelForImageTextToText.from_pretrained(str(self.path), local_files_only=True, dtype=dtype)
        except Exception as exc:
            raise VlmUnavailable(f"cannot load the VLM in {self.path}: {exc}") from exc
        self.model.to(self.device).eval()  # type: ignore[arg-type]  # transformers' wrapped .to loses self
        tokenizer = getattr(self.processor, "tokenizer", None)
        if tokenizer is None or getattr(self.processor, "chat_template", None) is None:
            raise VlmUnavailable(f"the processor in {self.path} has no tokenizer or no chat template")
        self.tokenizer: PreTrainedTokenizerBase = tokenizer
        self.max_new_tokens = max_new_tokens
        # Reports are longer than answers: at least 384 tokens unless set.
        self.report_max_new_tokens = report_max_new_tokens or max(max_new_tokens, 384)
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self._slot = _device_slot(self.device)
        self._lock = self._slot.lock
        self.last_generation = GenerationStats()
        digest = hashlib.sha256((self.path / "config.json").read_bytes()).hexdigest()[:8]
        self._info = VlmInfo(name=self.path.name, version=f"{config.model_type}-{digest}", backend="transformers")

    @property
    def info(self) -> VlmInfo:
        return self._info

    async def aclose(self) -> None:
        return None

    async def answer(self, request: AskRequest) -> AsyncGenerator[str, None]:
        messages = build_messages(request, with_image=request.image is not None)
        async for piece in self._generate(messages, request.image, self.max_new_tokens):
            yield piece

    async def draft_report(self, context: ReportContext) -> ReportDraft:
        messages = build_report_messages(context, with_image=context.image is not None)
        text = await collect(self._generate(messages, context.image, self.report_max_new_tokens))
        return draft_from_llm_text(text, context, self._info)

    # ----- internals -----
    def _inputs(self, messages: list[dict[str, Any]], image: np.ndarray | None) -> Any:
        try:
            prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except Exception:
            # Some templates (e.g. Gemma) reject a system role: fold it into the first user turn.
            system = " ".join(p["text"] for p in messages[0]["content"])
            rest = [dict(m) for m in messages[1:]]
            rest[0]["content"] = [{"type": "text", "text": system}] + list(rest[0]["content"])
            prompt = self.processor.apply_chat_template(rest, add_generation_prompt=True, tokenize=False)
        kwargs: dict[str, Any] = {"text": [prompt], "return_tensors": "pt"}
        if image is not None:
            kwargs["images"] = [image]
        return self.processor(**kwargs).to(self.device)

    async def _acquire(self) -> None:
        """Take the device lock, waiting in the bounded queue; `VlmBusy` when the queue is full."""
        if self._lock.acquire(blocking=False):
            return
        slot = self._slot
        if slot.waiting >= self.queue_size:
            raise VlmBusy(slot.waiting)
        slot.waiting += 1
        try:
            # Polling keeps waiting cancellable and independent of the event
            # loop (a blocking acquire in a thread cannot be abandoned).
            while not self._lock.acquire(blocking=False):
                await asyncio.sleep(0.01)
        finally:
            slot.waiting -= 1

    async def _generate(
        self, messages: list[dict[str, Any]], image: np.ndarray | None, max_new_tokens: int
    ) -> AsyncIterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        await self._acquire()
        stop = threading.Event()
        stats = GenerationStats()
        self.last_generation = stats
        started = time.perf_counter()

        class _StopOnEvent(StoppingCriteria):
            """Called once per generated token: counts tokens and stops when asked to."""

            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
                import torch

                stats.tokens += 1
                if stats.first_token_s is None:
                    stats.first_token_s = time.perf_counter() - started
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=self.timeout_s
        )
        errors: list[BaseException] = []

        def work() -> None:
            try:
                import torch

                inputs = self._inputs(messages, image)
                with torch.inference_mode():
                    self.model.generate(
                        **inputs,
                        max_new_tokens=max_new_tokens,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_StopOnEvent()]),
                    )
            except BaseException as exc:  # reported to the consumer, not lost in the thread
                errors.append(exc)
                streamer.end()
            finally:
                stats.total_s = time.perf_counter() - started
                stats.cancelled = stop.is_set()
                self._lock.release()  # the thread owns the device until generation really ends
                stats.done.set()

        try:
            thread = threading.Thread(target=work, name="vlm-generate", daemon=True)
            thread.start()
        except BaseException:
            self._lock.release()
            raise
        try:
            while True:
                try:
                    piece = await asyncio.to_thread(next, streamer, None)
                except queue.Empty:
                    raise VlmError(f"the VLM produced nothing for {self.timeout_s:g} s") from None
                if piece is None:
                    break
                if piece:
                    yield piece
            # The streamer ends just before generate() returns; wait for the
            # worker so stats are final and the device is free when we return.
            await asyncio.to_thread(stats.done.wait)
            if errors:
                raise VlmError(f"generation failed: {errors[0]}") from errors[0]
        finally:
            # Consumer left (aclose / cancel / error) or generation ended: make
            # sure the worker stops at its next token either way.
            stop.set()
