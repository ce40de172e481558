"""Tiny random ``transformers`` models written to a folder, offline, for tests.

Nothing is downloaded: the tokenizer is a byte-level BPE trained here (``tokenizers``) on a few
sentences, the weights are random (seeded), and everything is saved with ``save_pretrained`` so
that the Auto classes load it back with ``from_pretrained(path, local_files_only=True)``:

- :func:`write_tiny_causal_lm`: a 2-layer Llama (hidden size 32) and its tokenizer;
- :func:`write_tiny_vlm`: a LLaVA (a 2-layer CLIP vision tower on 28 px images in 14 px
  patches, 4 image tokens per image, and the Llama above) and its processor, whose chat
  template renders ``{"type": "image"}`` parts as ``<image>``. ``trl.DPOTrainer`` trains it.

Both chat templates render ``<|role|>\\n`` + content + ``</s>`` per message and end with
``<|assistant|>\\n`` for a generation prompt. The models know nothing: they only make tests of
the plumbing (loading, templates, generation, training steps) run in a second on a CPU.
Needs ``transformers``, ``tokenizers`` and ``torch``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["CHAT_TEMPLATE", "IMAGE_TOKEN", "write_tiny_causal_lm", "write_tiny_vlm"]

IMAGE_TOKEN = "<image>"
IMAGE_SIZE, PATCH_SIZE = 28, 14

# Content is a string, or a list of parts: {"type": "text", "text"} and {"type": "image"}.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}" + IMAGE_TOKEN + "{% elif part['type'] == 'text' %}"
    "{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_CORPUS = [
    "A red square on a white background.",
    "A small blue circle next to a green triangle.",
    "The photo shows a cat sitting on a wooden table.",
    "Describe the image in detail. What colours and shapes do you see?",
    "Answer the question: how many objects are there? There are three objects.",
    "The quick brown fox jumps over the lazy dog, 0123456789.",
]
_SPECIALS = ["<pad>", "<s>", "</s>"]


def _tokenizer(extra_specials: list[str]) -> Any:
    """A byte-level BPE (vocabulary about 320) wrapped in ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=_SPECIALS + extra_specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=extra_specials or None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
    )
    return tokenizer


def _llama_config(tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )


def _generation_config(tokenizer: Any) -> Any:
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def write_tiny_causal_lm(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a random 2-layer Llama (hidden 32, about 40k parameters) and its tokenizer (with
    :data:`CHAT_TEMPLATE`) to ``path``; returns ``path``. Same ``seed``, same weights."""
    import torch
    from transformers import LlamaForCausalLM

    path = Path(path)
    tokenizer = _tokenizer([])
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(tokenizer))
    model.generation_config = _generation_config(tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_tiny_vlm(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a random LLaVA (CLIP vision tower: 28 px images, 14 px patches, 2 layers of
    width 32; the Llama of :func:`write_tiny_causal_lm`) and its ``LlavaProcessor`` to
    ``path``; returns ``path``. An image becomes 4 ``<image>`` tokens."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    try:  # transformers 5: the PIL backend (the default one needs torchvision)
        from transformers import CLIPImageProcessorPil as ImageProcessor
    except ImportError:  # transformers 4: CLIPImageProcessor is the PIL one
        from transformers import CLIPImageProcessor as ImageProcessor

    path = Path(path)
    tokenizer = _tokenizer([IMAGE_TOKEN])
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=32,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_llama_config(tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",  # drop CLS: (28 / 14) ** 2 = 4 image tokens
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )
    image_processor = ImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_center_crop=False,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS, dropped by the "default" strategy
        image_token=IMAGE_TOKEN,
        chat_template=CHAT_TEMPLATE,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config = _generation_config(tokenizer)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
