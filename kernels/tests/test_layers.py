"""The shared model-building rules: PySlowFast's channel rounding and ViT-style init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.kernels.layers import round_width, trunc_normal_init_


@pytest.mark.parametrize(
    ("width", "mult", "min_width", "divisor", "expected"),
    [
        (24, 2.0, 8, 8, 48),  # X3D stem x width factor
        (54, 0.0625, 8, 8, 8),  # min_width floor (SE of a small block)
        (96, 2.2, 8, 8, 208),  # 211.2 -> 208 (half up, >= 90%)
        (10, 1.14, 1, 8, 16),  # 11.4 -> 8 would drop > 10%, so one more divisor
        (96, 2.0, 1, 1, 192),  # MViT's defaults: plain scaling
        (7, 0, 8, 8, 7),  # multiplier 0 leaves the width alone
    ],
)
def test_round_width(width, mult, min_width, divisor, expected):
    assert round_width(width, mult, min_width=min_width, divisor=divisor) == expected


def test_trunc_normal_init_():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 256), nn.LayerNorm(256), nn.Conv3d(3, 4, 3), nn.Linear(4, 2)
    )
    trunc_normal_init_(model, std=0.02, bias=0.02)
    w = model[0].weight
    # torch's trunc_normal_ cuts at +-2 absolute (the official code's call), i.e. not at all
    # for std 0.02: what matters is the spread, far below nn.Linear's default (~0.07 here).
    assert 0.018 < w.std().item() < 0.022 and abs(w.mean().item()) < 0.002
    assert torch.all(model[0].bias == 0.02) and torch.all(model[1].bias == 0.02)
    assert torch.all(model[1].weight == 1.0)
    assert model[2].weight.std().item() < 0.03 and model[2].bias is not None
