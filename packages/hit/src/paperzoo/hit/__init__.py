"""paperzoo.hit: HiT (Liu et al., arXiv:2103.15049), hierarchical transformer with momentum
contrast for video-text retrieval.

    from paperzoo.core import create_model
    model = create_model("hit_tiny")   # video + BERT towers, momentum copies, four queues

The model is in :mod:`paperzoo.hit.model`, the objective in :mod:`paperzoo.hit.method`, data
readers, captions and the tokenizer in :mod:`paperzoo.hit.data`, recipes in
:mod:`paperzoo.hit.recipes`. Importing this package does not import torch; the names below
load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CaptionedVideo",
    "CaptionedVideoDataset",
    "HiT",
    "HiTMethod",
    "KeyQueue",
    "TextTransformer",
    "TokenizingCollate",
    "VideoTransformer",
    "hierarchical_loss",
    "momentum_update",
    "moving_digit_captions",
    "read_activitynet_captions",
    "read_lsmdc",
    "read_msrvtt_1ka_test",
    "read_msrvtt_train",
    "train_wordpiece_tokenizer",
]

_WHERE = {n: "model" for n in ("HiT", "KeyQueue", "TextTransformer", "VideoTransformer")}
_WHERE.update(momentum_update="model", HiTMethod="method", hierarchical_loss="method")
_WHERE.update({name: "data" for name in __all__ if name not in _WHERE})


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.hit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"paperzoo.hit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
