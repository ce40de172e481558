"""paperzoo.mavil: MAViL, "Masked Audio-Video Learners".

Huang, Sharma, Xu, Ryali, Fan, Li, Li, Ghosh, Malik, Feichtenhofer, NeurIPS 2023,
arXiv:2212.08071; no official training code or weights were released.

Build models by name through ``paperzoo.core.create_model("mavil_vit_base_audioset")``
(optionally ``checkpoint_path=`` a ``model.safetensors`` or checkpoint that our own training
writes), or import them from here. The names below are imported on first use, so
``import paperzoo.mavil`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "MAViL": "paperzoo.mavil.model",
    "MAViLClassifier": "paperzoo.mavil.model",
    "MAEDecoder": "paperzoo.mavil.model",
    "build_classifier": "paperzoo.mavil.model",
    "build_pretraining_model": "paperzoo.mavil.model",
    "MAViLPretraining": "paperzoo.mavil.method",
    "Finetune": "paperzoo.mavil.method",
    "info_nce": "paperzoo.mavil.method",
    "masked_mse": "paperzoo.mavil.method",
    "AVClipDataset": "paperzoo.mavil.data",
    "write_av_mp4": "paperzoo.mavil.data",
    "write_av_digits": "paperzoo.mavil.data",
    "load_checkpoint": "paperzoo.mavil.convert",
    "MAViLRecipeConfig": "paperzoo.mavil.recipes",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.mavil' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
