"""Castling-ViT linear-angular attention: linear form vs quadratic reference, block wiring."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from paperzoo.kernels import (
    LinearAngularAttention,
    linear_angular_attention,
    linear_angular_attention_reference,
)
from paperzoo.kernels.castling import (
    castle,
    masked_softmax_attention,
    set_sparse_threshold,
    sparse_mass,
    sparse_threshold_schedule,
)


def test_linear_form_equals_the_quadratic_kernel_form():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 50, 16, generator=g, dtype=torch.float64) for _ in range(3))
    got = linear_angular_attention(q, k, v)
    want = linear_angular_attention_reference(q, k, v)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got.norm(dim=-1), torch.ones(2, 3, 50, dtype=torch.float64))


def test_kernel_weights_are_the_linear_term_of_the_angular_kernel():
    """For unit vectors, 0.5 + cos/π is the first-order Taylor term of 1 - arccos(cos)/π."""
    cos = torch.linspace(-0.2, 0.2, 9, dtype=torch.float64)
    angular = 1 - torch.arccos(cos) / math.pi
    linear = 0.5 + cos / math.pi
    assert (angular - linear).abs().max() < 2e-3  # cubic remainder, tiny near orthogonality
    # and the reference's off-diagonal weights are exactly that linear term
    q = F.normalize(torch.randn(1, 1, 4, 8, dtype=torch.float64), dim=-1)
    v = torch.eye(4, dtype=torch.float64).view(1, 1, 4, 4)
    raw = 0.5 * v + (q @ q.transpose(-2, -1)) @ v / math.pi  # unnormalised weights (k = q)
    off = ~torch.eye(4, dtype=torch.bool)
    torch.testing.assert_close(raw[0, 0][off], ((q @ q.transpose(-2, -1))[0, 0] / math.pi)[off])


def _block_by_hand(block: LinearAngularAttention, x: torch.Tensor) -> torch.Tensor:
    """The block written out per head with explicit loops (an independent code path)."""
    b, n, c = x.shape
    h = block.num_heads
    d = c // h
    qkv = x @ block.qkv.weight.t()
    if block.qkv.bias is not None:
        qkv = qkv + block.qkv.bias
    out = torch.empty(b, n, c, dtype=x.dtype)
    kernel = block.dconv.weight  # (h, 1, ks, 1)
    ks = kernel.shape[2]
    for bi in range(b):
        for hi in range(h):
            q = qkv[bi, :, hi * d : (hi + 1) * d]
            k = qkv[bi, :, c + hi * d : c + (hi + 1) * d]
            v = qkv[bi, :, 2 * c + hi * d : 2 * c + (hi + 1) * d]
            qn = q / q.norm(dim=-1, keepdim=True)
            kn = k / k.norm(dim=-1, keepdim=True)
            weights = 0.5 * torch.eye(n, dtype=x.dtype) + qn @ kn.t() / math.pi
            if block.sparse_reg:
                s = (q @ k.t() * d**-0.5).softmax(-1)
                weights = weights + s * (s > block.sparse_threshold)
            y = weights @ v
            y = y / y.norm(dim=-1, keepdim=True)
            conv = torch.zeros(n, d, dtype=x.dtype)  # 'same' conv along tokens, zero padded
            for t in range(n):
                for j in range(ks):
                    src = t + j - ks // 2
                    if 0 <= src < n:
                        conv[t] += kernel[hi, 0, j, 0] * v[src]
            out[bi, :, hi * d : (hi + 1) * d] = y + conv
    return out @ block.proj.weight.t() + block.proj.bias


@pytest.mark.parametrize("sparse_reg", [False, True])
def test_block_matches_a_per_head_hand_computation(sparse_reg):
    torch.manual_seed(0)
    block = LinearAngularAttention(32, num_heads=4, qkv_bias=True, sparse_reg=sparse_reg).double()
    x = torch.randn(2, 23, 32, dtype=torch.float64)
    torch.testing.assert_close(block(x), _block_by_hand(block, x), rtol=1e-10, atol=1e-10)


def test_parameters_match_the_official_block():
    block = LinearAngularAttention(256, num_heads=8, qkv_bias=False)
    shapes = {name: tuple(p.shape) for name, p in block.named_parameters()}
    assert shapes == {
        "qkv.weight": (768, 256),
        "proj.weight": (256, 256),
        "proj.bias": (256,),
        "dconv.weight": (8, 1, 9, 1),
    }
    assert sum(p.numel() for p in block.parameters()) == 768 * 256 + 256 * 256 + 256 + 8 * 9


def test_gradients_are_exact():
    torch.manual_seed(1)
    block = LinearAngularAttention(8, num_heads=2, res_kernel_size=3).double()
    x = torch.randn(1, 6, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), fast_mode=True)


def test_bad_width_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        LinearAngularAttention(30, num_heads=4)


# -- the auxiliary branch: schedule to an exactly-zero mask, and castling --------------------


def test_schedule_starts_at_the_official_threshold_and_reaches_exactly_one():
    assert sparse_threshold_schedule(0.0) == 0.02
    values = [sparse_threshold_schedule(i / 100) for i in range(101)]
    assert all(b >= a for a, b in itertools.pairwise(values))  # monotone
    assert 0.02 < sparse_threshold_schedule(0.4) < 1.0
    assert sparse_threshold_schedule(0.75) == 1.0 and sparse_threshold_schedule(1.0) == 1.0
    assert sparse_threshold_schedule(0.1, begin=0.2, end=0.5) == 0.02
    with pytest.raises(ValueError, match="begin"):
        sparse_threshold_schedule(0.5, begin=0.6, end=0.5)


def test_mask_at_threshold_one_is_exactly_zero_even_when_softmax_saturates():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 40, 8, generator=g) for _ in range(3))
    q_hot = q * 1e4  # logits so large that rows of the softmax are exactly one-hot (1.0)
    weights = (q_hot @ k.transpose(-2, -1)).softmax(-1)
    assert (weights == 1.0).any()
    for query in (q, q_hot):
        out, mass = masked_softmax_attention(query, k, v, scale=8**-0.5, threshold=1.0)
        assert torch.count_nonzero(out) == 0 and mass.item() == 0.0
    out, mass = masked_softmax_attention(q, k, v, scale=8**-0.5, threshold=0.02)
    assert torch.count_nonzero(out) > 0 and 0.0 < mass.item() <= 1.0


def test_castling_changes_nothing_once_the_mask_is_zero():
    torch.manual_seed(0)
    block = LinearAngularAttention(32, num_heads=4, sparse_reg=True).double()
    x = torch.randn(2, 30, 32, dtype=torch.float64)
    with_branch = block(x)
    linear = LinearAngularAttention(32, num_heads=4).double()
    linear.load_state_dict(block.state_dict())  # the branch adds no parameters
    assert not torch.allclose(with_branch, linear(x))  # at 0.02 the branch matters
    assert set_sparse_threshold(block, 1.0) == 1
    at_zero = block(x)
    assert castle(block) == 1 and not block.sparse_reg
    assert torch.equal(at_zero, block(x))  # bit for bit
    assert torch.equal(block(x), linear(x))


def test_sparse_mass_is_kept_in_training_only_and_has_a_gradient():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        LinearAngularAttention(16, num_heads=2, sparse_reg=True),
        LinearAngularAttention(16, num_heads=2, sparse_reg=True),
    )
    x = torch.randn(2, 12, 16)
    model.eval()
    model(x)
    assert sparse_mass(model) is None
    model.train()
    model(x)
    mass = sparse_mass(model)
    assert mass is not None and 0.0 < mass.item() <= 1.0
    mass.backward()
    assert model[0].qkv.weight.grad is not None and model[0].qkv.weight.grad.abs().sum() > 0
    castle(model)
    model(x)
    assert sparse_mass(model) is None


def test_pooled_keys_need_the_queries_own_values():
    from paperzoo.kernels.castling import linear_angular_term

    g = torch.Generator().manual_seed(0)
    q, v_self = torch.randn(1, 2, 10, 4, generator=g), torch.randn(1, 2, 10, 4, generator=g)
    k, v = torch.randn(1, 2, 5, 4, generator=g), torch.randn(1, 2, 5, 4, generator=g)
    with pytest.raises(ValueError, match="v_self"):
        linear_angular_term(q, k, v)
    got = linear_angular_term(q, k, v, v_self=v_self)
    qn, kn = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    torch.testing.assert_close(got, 0.5 * v_self + (qn @ kn.transpose(-2, -1)) @ v / math.pi)
    same = torch.randn(1, 2, 10, 4, generator=g)
    torch.testing.assert_close(
        linear_angular_term(q, q, same), linear_angular_term(q, q, same, same)
    )
