"""The training objective: the mask schedule reaches exactly zero and castles the model; the
optional penalty adds the kept masked mass to the loss."""

from __future__ import annotations

import itertools

import pytest
import torch

from paperzoo.castlingvit.method import CastlingClassification
from paperzoo.castlingvit.model import castling_vit_tiny_mnist
from paperzoo.kernels.castling import sparse_mass


def _batch(n: int = 4):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def _blocks(model):
    return [b.attn for b in model.blocks]


def test_cosine_schedule_reaches_one_at_end_and_castles_the_model():
    torch.manual_seed(0)
    model = castling_vit_tiny_mnist()
    method = CastlingClassification(model, end=0.5, total_steps=10)
    taus = [method.threshold_at(s) for s in range(10)]
    assert taus[0] == 0.02 and all(b >= a for a, b in itertools.pairwise(taus))
    assert taus[4] < 1.0 and taus[5:] == [1.0] * 5
    out = method.training_step(_batch(), 4)
    assert out["tau"].item() == pytest.approx(taus[4])
    assert all(
        b.sparse_reg and b.sparse_threshold == pytest.approx(taus[4]) for b in _blocks(model)
    )
    assert "sparse_mass" in out
    out = method.training_step(_batch(), 5)
    assert out["tau"].item() == 1.0 and "sparse_mass" not in out
    assert not any(b.sparse_reg for b in _blocks(model))  # castled in training


def test_constant_schedule_keeps_the_official_threshold():
    method = CastlingClassification(castling_vit_tiny_mnist(), schedule="constant")
    assert method.threshold_at(0) == method.threshold_at(10**6) == 0.02
    with pytest.raises(ValueError, match="total_steps"):
        CastlingClassification(castling_vit_tiny_mnist()).threshold_at(0)
    with pytest.raises(ValueError, match="unknown mask schedule"):
        CastlingClassification(castling_vit_tiny_mnist(), schedule="linear")


def test_penalty_adds_the_kept_mass_to_the_loss():
    torch.manual_seed(0)
    model = castling_vit_tiny_mnist()
    # threshold 0: every softmax weight is kept, the mass is exactly 1 per query row
    plain = CastlingClassification(model, schedule="constant", threshold=0.0)
    penalised = CastlingClassification(model, schedule="constant", threshold=0.0, penalty=0.5)
    torch.manual_seed(1)
    base = plain.training_step(_batch(), 0)
    torch.manual_seed(1)
    with_penalty = penalised.training_step(_batch(), 0)
    assert base["sparse_mass"].item() == pytest.approx(1.0, abs=1e-5)
    assert (with_penalty["loss"] - base["loss"]).item() == pytest.approx(0.5, abs=1e-5)
    assert sparse_mass(model).requires_grad
