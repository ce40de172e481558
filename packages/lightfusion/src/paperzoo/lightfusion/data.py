"""Prompts for the tiny study: digits described in words, some of which need the LM.

A prompt names a digit 0-9 directly ("the digit seven", "a 7", "the number seven") or through
a small piece of language the DiT alone cannot read: "the number after six", "the number
before eight", "three plus four", "nine minus two". Tokens are whole words
(:class:`WordTokenizer`); a prompt is ``<bos> words <eos>`` as the official ``prepare_prompts``
wraps text in ``<|im_start|>`` / ``<|im_end|>``, and the empty prompt ``<bos> <eos>`` is the
unconditional branch.

The LM is pretrained (next-token) on ``<bos> prompt <eos> answer``: after reading a prompt it
predicts the digit's word, so its hidden states carry the answer. Arithmetic pairs are split:
one half for the fused model's training, the other half only in the test prompts (the LM has
seen every pair).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["NAMES", "PromptBank", "PromptDigits", "WordTokenizer", "build_prompt_bank"]

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_WORDS = ("<pad>", "<bos>", "<eos>", "the", "digit", "number", "a", "after", "before", "plus",
          "minus", *NAMES, *(str(d) for d in range(10)))  # fmt: skip
LM_KINDS = ("after", "before", "plus", "minus")


class WordTokenizer:
    """Whole-word ids over the study's fixed vocabulary; id 0 pads."""

    def __init__(self) -> None:
        self.vocab = {w: i for i, w in enumerate(_WORDS)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """``<bos> words <eos>``; an unknown word is an error that names it."""
        try:
            return [self.bos_id, *(self.vocab[w] for w in text.split()), self.eos_id]
        except KeyError as err:
            raise KeyError(f"word {err.args[0]!r} is not in the study's vocabulary") from None

    def batch(self, texts: list[str], length: int) -> tuple[Tensor, Tensor]:
        """Right-padded (B, length) ids and attention mask."""
        ids = torch.zeros(len(texts), length, dtype=torch.long)
        mask = torch.zeros(len(texts), length, dtype=torch.long)
        for i, text in enumerate(texts):
            enc = self.encode(text)
            if len(enc) > length:
                raise ValueError(f"prompt {text!r} has {len(enc)} tokens; max_length={length}")
            ids[i, : len(enc)] = torch.tensor(enc)
            mask[i, : len(enc)] = 1
        return ids, mask


@dataclass
class PromptBank:
    """Prompts per digit, by kind: ``train`` (the fused model's training), ``test_lm`` (the
    held-out prompts that need the LM), ``direct`` (the ones that name the digit)."""

    train: dict[int, list[str]]
    direct: dict[int, list[str]]
    test_lm: dict[int, list[str]]
    lm_all: dict[int, list[str]]


def _kind_prompts(d: int) -> dict[str, list[str]]:
    return {
        "direct": [f"the digit {NAMES[d]}", f"a {d}", f"the number {NAMES[d]}"],
        "after": [f"the number after {NAMES[d - 1]}"] if d > 0 else [],
        "before": [f"the number before {NAMES[d + 1]}"] if d < 9 else [],
        "plus": [f"{NAMES[a]} plus {NAMES[d - a]}" for a in range(d + 1)],
        "minus": [f"{NAMES[d + b]} minus {NAMES[b]}" for b in range(10 - d)],
    }


def build_prompt_bank(seed: int = 0) -> PromptBank:
    """Every prompt of every digit; the arithmetic ones split in half (fixed by ``seed``)."""
    rng = random.Random(seed)
    train, direct, test_lm, lm_all = {}, {}, {}, {}
    for d in range(10):
        kinds = _kind_prompts(d)
        arith = kinds["plus"] + kinds["minus"]
        rng.shuffle(arith)
        half = max(1, len(arith) // 2)
        train[d] = kinds["direct"] + kinds["after"] + kinds["before"] + arith[:half]
        test_lm[d] = kinds["after"] + kinds["before"] + arith[half:]
        direct[d] = kinds["direct"]
        lm_all[d] = kinds["after"] + kinds["before"] + arith
    return PromptBank(train=train, direct=direct, test_lm=test_lm, lm_all=lm_all)


def lm_corpus(bank: PromptBank) -> list[tuple[str, int]]:
    """The LM's pretraining texts: every prompt of every digit with its answer."""
    return [(p, d) for d in range(10) for p in sorted(set(bank.direct[d] + bank.lm_all[d]))]


class PromptDigits(Dataset):
    """(image (1, S, S) in [-1, 1], ids (L,), mask (L,), label): each digit image with a
    prompt for its label drawn from ``prompts`` (a fresh draw per item and epoch, seeded by
    the index and ``epoch_seed``)."""

    def __init__(self, images: Tensor, labels: Tensor, prompts: dict[int, list[str]],
                 tokenizer: WordTokenizer, *, max_length: int = 8, seed: int = 0) -> None:  # fmt: skip
        self.images, self.labels = images, labels
        self.prompts, self.tok = prompts, tokenizer
        self.max_length, self.seed = max_length, seed
        self._draws = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        y = int(self.labels[i])
        rng = random.Random(hash((self.seed, i, self._draws)))
        self._draws += 1
        ids, mask = self.tok.batch([rng.choice(self.prompts[y])], self.max_length)
        return self.images[i], ids[0], mask[0], y
