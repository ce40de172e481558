"""Shared test helpers for paperzoo-slowfast."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

# The CI machines are shared: with more OpenMP threads than free cores, every small op pays
# for spinning threads (measured here: one tiny SlowFast step 0.75 s with 1 thread, 4-8 s with
# 2 on a loaded 2-core box). Tests only check numbers, so they use one thread unless told.
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)


def _randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random affine parameters and running statistics, and every
    Linear random weights, so that parity tests exercise every branch (the default init
    zeroes each residual branch's last BN, which would hide a wrong branch)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.25)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.05)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


@pytest.fixture
def randomize_norms():
    return _randomize_norms
