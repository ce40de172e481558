"""paperzoo.mocov2: MoCo v1/v2, "Improved Baselines with Momentum Contrastive Learning".

Chen, Fan, Girshick, He 2020, arXiv:2003.04297; official code
https://github.com/facebookresearch/moco.

Build models by name through ``paperzoo.core.create_model("mocov2_resnet50")`` (optionally
``checkpoint_path="moco_v2_800ep_pretrain.pth.tar"``), or import them from here. The names
below are imported on first use, so ``import paperzoo.mocov2`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "MoCo": "paperzoo.mocov2.model",
    "NarrowResNet": "paperzoo.mocov2.model",
    "info_nce_logits": "paperzoo.mocov2.model",
    "mocov1_resnet50": "paperzoo.mocov2.model",
    "mocov2_resnet10_narrow": "paperzoo.mocov2.model",
    "mocov2_resnet18_cifar": "paperzoo.mocov2.model",
    "mocov2_resnet50": "paperzoo.mocov2.model",
    "MoCoMethod": "paperzoo.mocov2.method",
    "load_official_checkpoint": "paperzoo.mocov2.convert",
    "to_torchvision_state_dict": "paperzoo.mocov2.convert",
    "to_detectron2_state_dict": "paperzoo.mocov2.convert",
    "MoCoConfig": "paperzoo.mocov2.recipes",
    "MoCoRecipeConfig": "paperzoo.mocov2.recipes",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.mocov2' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
