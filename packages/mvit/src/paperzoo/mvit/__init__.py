"""paperzoo.mvit: Multiscale Vision Transformers (MViT, Fan et al. ICCV 2021) and MViTv2.

    from paperzoo.core import create_model
    model = create_model("mvit_base_16x4")                          # (B, 3, 16, 224, 224) -> (B, 400)
    model = create_model("mvit_base_16x4", checkpoint_path="MVIT_B_16x4.pyth")  # any layout

Models and sizes are in :mod:`paperzoo.mvit.model`, checkpoint converters (PySlowFast,
pytorchvideo, torchvision, timm) in :mod:`paperzoo.mvit.convert`, recipes in
:mod:`paperzoo.mvit.recipes` (training and testing: :mod:`paperzoo.train.classification`). Importing this package does not import torch; the names below
load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "MViT",
    "convert_state_dict",
    "count_macs",
    "load_checkpoint",
    "mvit_base_16x4",
    "mvit_base_32x3",
    "mvit_base_224",
    "mvit_tiny_video",
    "mvitv2_base",
    "mvitv2_small",
    "mvitv2_small_16x4",
    "mvitv2_tiny",
    "vit_tiny_video",
]

_WHERE = {
    "MViT": "model",
    "mvit_base_16x4": "model",
    "mvit_base_32x3": "model",
    "mvit_base_224": "model",
    "mvit_tiny_video": "model",
    "mvitv2_base": "model",
    "mvitv2_small": "model",
    "mvitv2_small_16x4": "model",
    "mvitv2_tiny": "model",
    "vit_tiny_video": "model",
    "convert_state_dict": "convert",
    "load_checkpoint": "convert",
    "count_macs": "flops",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.mvit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"paperzoo.mvit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
