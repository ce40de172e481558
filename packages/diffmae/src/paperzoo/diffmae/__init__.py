"""paperzoo.diffmae: DiffMAE, "Diffusion Models as Masked Autoencoders".

Wei, Mangalam, Huang, Li, Fan, Xu, Wang, Xie, Yuille, Feichtenhofer, ICCV 2023,
arXiv:2304.03283; no official code or weights were released.

Build models by name through ``paperzoo.core.create_model("diffmae_vit_large_patch16")``
(optionally ``checkpoint_path=`` an MAE-style ``checkpoint-N.pth`` or a ``model.safetensors``),
or import them from here. The names below are imported on first use, so
``import paperzoo.diffmae`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "DiffMAE": "paperzoo.diffmae.model",
    "MAE": "paperzoo.diffmae.model",
    "ViTClassifier": "paperzoo.diffmae.model",
    "MaskedViTEncoder": "paperzoo.diffmae.model",
    "DecoderBlock": "paperzoo.diffmae.model",
    "build_classifier": "paperzoo.diffmae.model",
    "build_pretraining_model": "paperzoo.diffmae.model",
    "top_down_sources": "paperzoo.diffmae.model",
    "DiffMAEPretraining": "paperzoo.diffmae.method",
    "MAEPretraining": "paperzoo.diffmae.method",
    "Finetune": "paperzoo.diffmae.method",
    "ddpm_scheduler": "paperzoo.diffmae.method",
    "inpaint": "paperzoo.diffmae.inpaint",
    "save_inpainting_grid": "paperzoo.diffmae.inpaint",
    "load_checkpoint": "paperzoo.diffmae.convert",
    "DiffMAERecipeConfig": "paperzoo.diffmae.recipes",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.diffmae' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
