"""Shared fixtures for paperzoo-pytorchvideo tests.

pytorchvideo 0.1.5 is the parity oracle (test dependency only). Its model modules import
fine on current torchvision; only ``pytorchvideo.transforms`` needs the removed
``torchvision.transforms.functional_tensor``, and no test here imports it, so no shim.
"""

from __future__ import annotations

import warnings

import pytest
import torch

# pytorchvideo's accelerator blocks call deprecated torch APIs at import; not our warnings.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every norm random affine parameters and running statistics, and scale the
    classifier so logits are O(1): parity then checks every tensor, not identity BNs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.empty_like(m.weight).uniform_(0.5, 1.5, generator=g))
                m.bias.copy_(torch.empty_like(m.bias).normal_(0, 0.2, generator=g))
                m.running_mean.copy_(torch.empty_like(m.running_mean).normal_(0, 0.2, generator=g))
                m.running_var.copy_(torch.empty_like(m.running_var).uniform_(0.5, 1.5, generator=g))
            elif isinstance(m, torch.nn.Linear):
                m.weight.copy_(
                    torch.empty_like(m.weight).normal_(0, 1.0 / m.in_features**0.5, generator=g)
                )
                m.bias.copy_(torch.empty_like(m.bias).normal_(0, 0.1, generator=g))
    return model


@pytest.fixture
def randomize():
    return randomize_
