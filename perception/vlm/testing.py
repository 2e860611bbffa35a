"""Tiny randomly initialised VLMs (and a text-only LM) saved with a locally built processor, so the backends load
real checkpoints by path with no hub. Test and benchmark tooling, never for real use: it is named ``testing`` (like
``numpy.testing``) so nobody mistakes it for a model source, and only tests and ``perception.bench.vlm`` import it.

Weights are random: generated text is gibberish, which is fine — the tests
check streaming, cancellation and queueing, not answer quality. EOS is
suppressed in the generation config so a random model never stops after one
token and every run produces max_new_tokens tokens unless cancelled.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedModel, PreTrainedTokenizerFast

WORDS = (
    "the a wound polyp instrument is in upper lower left right centre of frame image yes no small large near far "
    "tissue red pink edge border region area visible appears seen there here with and or not this that model "
    "detected findings impression follow up uncertainty clinician review sign draft report question answer"
).split()
SPECIAL = [
    "<pad>",
    "<unk>",
    "<s>",
    "</s>",
    "<image>",
    "<|vision_start|>",
    "<|image_pad|>",
    "<|vision_end|>",
    "<|video_pad|>",
]
SPECIAL += ["system:", "user:", "assistant:"]


def chat_template(image_text: str) -> str:
    return (
        "{% for m in messages %}{{ m['role'] }}: "
        "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}" + image_text + " {% elif c['type'] == 'text' %}{{ c['text'] }} {% endif %}"
        "{% endfor %}{% endif %} </s> {% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
    )


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIAL + WORDS + list("0123456789.,:;?!%-()#"))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.WordPiece(prefix="##")  # joins word tokens with spaces
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=SPECIAL[4:],
    )
    return fast


def _token_id(tok: PreTrainedTokenizerFast, token: str) -> int:
    found = tok.convert_tokens_to_ids(token)
    assert isinstance(found, int)  # one token in, one id out
    return found


def _no_eos(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast) -> None:
    model.generation_config.suppress_tokens = list(tokenizer.all_special_ids)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False


def save_tiny_llava(path: Path) -> Path:
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    torch.manual_seed(0)
    tok = build_tokenizer()
    image_token_id = _token_id(tok, "<image>")
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    model = LlavaForConditionalGeneration(cfg).eval()
    _no_eos(model, tok)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=chat_template("<image>"),
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def save_tiny_text_lm(path: Path) -> Path:
    """A text-only Llama: the "not a VLM" case, and the model for the server test."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = build_tokenizer()
    tok.chat_template = chat_template("")
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(cfg).eval()
    _no_eos(model, tok)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save_tiny_idefics3(path: Path) -> Path:
    """Idefics3 (SmolVLM's architecture): SigLIP-style vision, pixel-shuffle connector, Llama text."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    torch.manual_seed(0)
    tok = build_tokenizer()
    tok.add_special_tokens(
        {"additional_special_tokens": SPECIAL[4:] + ["<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]}
    )
    image_token_id = _token_id(tok, "<image>")
    cfg = Idefics3Config(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        text_config=dict(
            model_type="llama",
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ),
        scale_factor=2,
        image_token_id=image_token_id,
        pad_token_id=tok.pad_token_id,  # type: ignore[call-arg]  # __post_init__ takes it from **kwargs
    )
    model = Idefics3ForConditionalGeneration(cfg).eval()
    _no_eos(model, tok)
    improc = Idefics3ImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": 32},
        max_image_size={"longest_edge": 32},
        do_resize=True,
    )
    processor = Idefics3Processor(
        image_processor=improc, tokenizer=tok, image_seq_len=4, chat_template=chat_template("<image>")
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
