"""paperzoo.advflow: Adversarial Flow Models (Lin, Yang, Lin, Chen, Fan; arXiv 2511.22475).

1NFE, fixed N-step, any-step and deep (weight-shared) DiT generators, the DiT discriminator,
the guided stage's noisy-latent classifier, the adversarial flow objective (:class:`AdvFlow`) and the official checkpoint loader.

The names below are imported on first use, so ``import paperzoo.advflow`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "AdvFlow": "paperzoo.advflow.method",
    "AdvFlowClassifier": "paperzoo.advflow.model",
    "NoisyClassifierTraining": "paperzoo.advflow.method",
    "build_classifier": "paperzoo.advflow.model",
    "AdvFlowDiscriminator": "paperzoo.advflow.model",
    "AdvFlowGenerator": "paperzoo.advflow.model",
    "GradientNormalization": "paperzoo.advflow.method",
    "build_discriminator": "paperzoo.advflow.model",
    "build_generator": "paperzoo.advflow.model",
    "load_checkpoint": "paperzoo.advflow.convert",
    "paper_config": "paperzoo.advflow.recipes",
    "tiny_config": "paperzoo.advflow.recipes",
    "tiny_study": "paperzoo.advflow.recipes",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.advflow' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
