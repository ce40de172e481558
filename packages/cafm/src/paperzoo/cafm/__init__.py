"""paperzoo.cafm: Continuous Adversarial Flow Models (Lin et al., arXiv 2604.11521).

The names below are imported on first use, so ``import paperzoo.cafm`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # model.py: the SiT generator / discriminator and the tiny pair
    "CAFMDiscriminator": "paperzoo.cafm.model",
    "CAFMGenerator": "paperzoo.cafm.model",
    "FlowSamplerMixin": "paperzoo.cafm.model",
    "cafm_sit_xl_2": "paperzoo.cafm.model",
    "cafm_sit_xl_2_discriminator": "paperzoo.cafm.model",
    "cafm_tiny_mnist": "paperzoo.cafm.model",
    "cafm_tiny_mnist_discriminator": "paperzoo.cafm.model",
    "discriminator_like": "paperzoo.cafm.model",
    # jit.py: the JiT generator / discriminator
    "JiT": "paperzoo.cafm.jit",
    "JiTDiscriminator": "paperzoo.cafm.jit",
    "JiTGenerator": "paperzoo.cafm.jit",
    "cafm_jit_h_16": "paperzoo.cafm.jit",
    "cafm_jit_h_16_discriminator": "paperzoo.cafm.jit",
    # method.py: the objective
    "CAFM": "paperzoo.cafm.method",
    "discriminator_jvp": "paperzoo.cafm.method",
    "discriminator_loss": "paperzoo.cafm.method",
    "generator_loss": "paperzoo.cafm.method",
    # convert.py: official checkpoints
    "init_discriminator": "paperzoo.cafm.convert",
    "load_checkpoint": "paperzoo.cafm.convert",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.cafm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
