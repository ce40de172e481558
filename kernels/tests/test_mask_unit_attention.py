"""Hiera mask-unit attention: parity with facebookresearch/hiera and timm."""

from __future__ import annotations

import pytest
import torch

from paperzoo.kernels import MaskUnitAttention, use_backend

CONFIGS = [
    # dim, dim_out, heads, q_stride, window_size, use_mask_unit_attn, tokens
    (32, 64, 2, 4, 16, True, 256),  # stage transition: pooled queries inside mask units
    (32, 32, 1, 1, 16, True, 64),  # plain mask-unit attention
    (64, 96, 3, 4, 4, False, 64),  # global attention with q pooling
    (48, 48, 2, 1, 0, False, 50),  # global attention, odd length
]


def _references():
    refs = []
    try:
        from hiera.hiera import MaskUnitAttention as Official

        refs.append(("hiera-transformer", Official))
    except ImportError:
        pass
    try:
        from timm.models.hiera import MaskUnitAttention as Timm

        refs.append(("timm", Timm))
    except ImportError:
        pass
    if not refs:
        pytest.skip("neither hiera-transformer nor timm is installed")
    return refs


@pytest.mark.parametrize("config", CONFIGS)
def test_matches_the_official_and_timm_blocks_with_their_weights(config):
    dim, dim_out, heads, q_stride, window, mua, n = config
    for name, ref_cls in _references():
        torch.manual_seed(0)
        ref = ref_cls(dim, dim_out, heads, q_stride, window, mua)
        ours = MaskUnitAttention(dim, dim_out, heads, q_stride, window, mua)
        ours.load_state_dict(ref.state_dict())  # strict: same names and shapes
        x = torch.randn(2, n, dim, requires_grad=True)
        want = ref(x)
        got = ours(x)
        assert got.shape == (2, n // q_stride, dim_out)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=name)
        g = torch.randn_like(got)
        (got_dx,) = torch.autograd.grad(got, x, g)
        (want_dx,) = torch.autograd.grad(want, x, g)
        torch.testing.assert_close(got_dx, want_dx, rtol=1e-5, atol=1e-5, msg=name)


def test_triton_backend_runs_the_block():
    pytest.importorskip("triton")
    from hiera.hiera import MaskUnitAttention as Official

    torch.manual_seed(0)
    ref = Official(32, 64, 2, 4, 4, True)
    ours = MaskUnitAttention(32, 64, 2, 4, 4, True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(1, 64, 32)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ref, ours, x = ref.to(device), ours.to(device), x.to(device)
    with use_backend("triton"):
        got = ours(x)
    torch.testing.assert_close(got, ref(x), rtol=1e-4, atol=1e-4)


def test_tokens_that_do_not_fill_mask_units_are_refused():
    block = MaskUnitAttention(16, 16, 2, q_stride=4, window_size=4, use_mask_unit_attn=True)
    with pytest.raises(ValueError, match="mask units"):
        block(torch.randn(1, 40, 16))
