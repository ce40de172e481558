"""paperzoo.superclass: SuperClass, "Classification Done Right for Vision-Language Pre-Training".

Huang, Ye, Kang, Feng, Fan, NeurIPS 2024, arXiv:2411.03313; official code
https://github.com/x-cls/superclass.

Build models by name through ``paperzoo.core.create_model("superclass_vit_b16")``
(optionally ``checkpoint_path="epoch_1.pt"``, the layout the official training code writes),
or import them from here. The names below are imported on first use, so
``import paperzoo.superclass`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "SuperClass": "paperzoo.superclass.model",
    "ClassHead": "paperzoo.superclass.model",
    "build_clip": "paperzoo.superclass.model",
    "lit_from_superclass": "paperzoo.superclass.model",
    "pooled_image_features": "paperzoo.superclass.model",
    "superclass_vit_s16": "paperzoo.superclass.model",
    "superclass_vit_b16": "paperzoo.superclass.model",
    "superclass_vit_l16": "paperzoo.superclass.model",
    "superclass_vit_l14": "paperzoo.superclass.model",
    "superclass_vit_tiny_mnist": "paperzoo.superclass.model",
    "SuperClassMethod": "paperzoo.superclass.method",
    "ClipMethod": "paperzoo.superclass.method",
    "idf_weighted_targets": "paperzoo.superclass.method",
    "soft_target_cross_entropy": "paperzoo.superclass.method",
    "caption_digits": "paperzoo.superclass.captions",
    "measure_digits": "paperzoo.superclass.captions",
    "load_official_checkpoint": "paperzoo.superclass.convert",
    "official_to_paperzoo": "paperzoo.superclass.convert",
    "SuperClassRecipeConfig": "paperzoo.superclass.recipes",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.superclass' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
