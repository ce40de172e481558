"""paperzoo.hiera: Hiera (Ryali et al., ICML 2023, arXiv:2306.00989) for paperzoo.

Image and video Hiera models with official / timm checkpoint conversion, MAE pretraining
(``hiera_mae``), supervised fine-tuning and the ``hiera_tiny`` / ``hiera_paper`` recipes.

Importing this package is light (names resolve on first use), because the plugin module
``paperzoo.hiera.plugin`` is imported by every ``paperzoo list`` and must not pull in torch::

    from paperzoo.hiera import hiera_base_224, load_checkpoint
    model = load_checkpoint(hiera_base_224(), "hiera_base_224.pth")  # official file
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "Hiera": "model",
    "HieraBlock": "model",
    "HieraHead": "model",
    "PatchEmbed": "model",
    "Reroll": "model",
    "Unroll": "model",
    "model_configs": "model",
    "hiera_tiny_224": "model",
    "hiera_small_224": "model",
    "hiera_base_224": "model",
    "hiera_base_plus_224": "model",
    "hiera_large_224": "model",
    "hiera_huge_224": "model",
    "hiera_base_16x224": "model",
    "hiera_base_plus_16x224": "model",
    "hiera_large_16x224": "model",
    "hiera_huge_16x224": "model",
    "hiera_toy_8x64": "model",
    "HieraMAE": "method",
    "HieraClassifier": "method",
    "hiera_mae": "method",
    "hiera_finetune": "method",
    "layer_decay_param_groups": "method",
    "convert_official_state_dict": "convert",
    "convert_official_mae_state_dict": "convert",
    "convert_timm_state_dict": "convert",
    "detect_format": "convert",
    "load_checkpoint": "convert",
}

__all__ = sorted([*_WHERE, "__version__"])


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.hiera' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"paperzoo.hiera.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
