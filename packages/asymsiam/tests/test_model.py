"""The asymsiam model: the official projector on MoCo, and its parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.core import create_model, get_model, list_models, list_papers


def _trainable(model) -> int:
    return sum(p.numel() for p in model.encoder_q.parameters())


def test_registered_and_discoverable():
    assert "asymsiam" in list_papers()
    assert set(list_models("asymsiam*")) == {"asymsiam_resnet50", "asymsiam_resnet10_narrow"}


def test_resnet50_has_the_official_projector_and_parameter_count():
    model = create_model("asymsiam_resnet50")
    fc = model.encoder_q.fc
    # builder.py: Linear(2048,2048)-BN1d-ReLU-Linear(2048,2048)-ReLU-Linear(2048,128).
    assert [type(m) for m in fc] == [
        nn.Linear,
        nn.BatchNorm1d,
        nn.ReLU,
        nn.Linear,
        nn.ReLU,
        nn.Linear,
    ]
    assert [tuple(fc[i].weight.shape) for i in (0, 3, 5)] == [
        (2048, 2048),
        (2048, 2048),
        (128, 2048),
    ]
    # ResNet-50 without fc (23,508,032) + 4,196,352 + 4,096 + 4,196,352 + 262,272.
    assert _trainable(model) == 32_167_104 == get_model("asymsiam_resnet50").num_params
    assert sum(p.numel() for p in model.encoder_k.parameters() if p.requires_grad) == 0
    assert (model.queue_size, model.momentum, model.temperature) == (65536, 0.999, 0.2)


def test_narrow_model_count_and_forward():
    model = create_model("asymsiam_resnet10_narrow")
    assert _trainable(model) == get_model("asymsiam_resnet10_narrow").num_params == 357_328
    out = model(torch.randn(4, 3, 16, 16))
    assert out.shape == (4, 128)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))


def test_the_projector_is_not_optional():
    with pytest.raises(ValueError, match=r"moco\.mlp=true"):
        create_model("asymsiam_resnet10_narrow", mlp=False)
