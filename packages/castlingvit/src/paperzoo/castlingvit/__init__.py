"""paperzoo.castlingvit: Castling-ViT (You et al., CVPR 2023), linear-angular attention ViTs.

    from paperzoo.core import create_model
    from paperzoo.kernels.castling import castle
    model = create_model("castling_deit_tiny")   # with the training-only softmax branch
    castle(model)                                # -> the linear-only inference model

Models are in :mod:`paperzoo.castlingvit.model`, the training objective (mask schedule,
optional penalty) in :mod:`paperzoo.castlingvit.method`, MAC counting in
:mod:`paperzoo.castlingvit.flops`, recipes in :mod:`paperzoo.castlingvit.recipes`. Importing
this package does not import torch; the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CastlingAttention",
    "CastlingClassification",
    "CastlingMultiScaleAttention",
    "castling_deit_base",
    "castling_deit_small",
    "castling_deit_tiny",
    "castling_mvitv2_base",
    "castling_mvitv2_small",
    "castling_mvitv2_tiny",
    "castling_vit_tiny_mnist",
    "count_macs",
    "deit_base",
    "deit_small",
    "deit_tiny",
    "inference_macs",
    "load_checkpoint",
    "vit_tiny_mnist",
]

_WHERE = {name: "model" for name in __all__}
_WHERE.update(
    CastlingClassification="method",
    count_macs="flops",
    inference_macs="flops",
    load_checkpoint="convert",
)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.castlingvit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"paperzoo.castlingvit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
