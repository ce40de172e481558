"""Triton flash attention against a float64 reference: outputs and gradients.

On CPU these run in Triton's interpreter (conftest sets TRITON_INTERPRET=1), which is slow, so
the shapes are small and odd (tails on every axis); on a GPU the same tests run compiled. The
inputs are fresh random draws every run; the seed is in the test id's output on failure.
bf16 is tested under the interpreter too: the kernels cast tl.dot operands to fp32 there (see
triton_flash's module docs), which is the path these tests exercise.
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton")

from paperzoo.kernels import attention, explain, reference_attention
from paperzoo.kernels.triton_flash import flash_attention

# Max abs error allowed against float64, for O(1) outputs and gradients: 2.5x or more the worst
# error seen over 48 fresh draws per case, and far below what an indexing or masking mistake
# produces (O(0.1-1)).
_ATOL = {torch.float32: 2e-5, torch.float16: 5e-3, torch.bfloat16: 5e-2}


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(4), "little")


def _inputs(device, dtype, b, h, n_q, n_k, d, seed):
    g = torch.Generator().manual_seed(seed)

    def make(n):
        return torch.randn(b, h, n, d, generator=g).to(device, dtype).requires_grad_()

    return make(n_q), make(n_k), make(n_k), g


def _mask(kind, b, h, n_q, n_k, dtype, device, g):
    if kind == "bool":
        keep = torch.rand(b, 1, n_q, n_k, generator=g) > 0.35
        rows = torch.arange(n_q)
        keep[..., rows, rows % n_k] = True  # no fully masked rows: the reference is NaN there
        return keep.to(device)
    if kind == "additive":
        return torch.randn(1, h, n_q, n_k, generator=g).to(device, dtype)
    return None


def _check(got, want, dtype, what, seed):
    err = (got.double() - want).abs()
    atol = _ATOL[dtype]
    assert err.max().item() <= atol, (
        f"{what}: max error {err.max().item():.3g} > {atol} (seed {seed})"
    )
    # a systematic error (wrong scale, a dropped block) shows in the mean long before the max
    assert err.mean().item() <= atol / 5, (
        f"{what}: mean error {err.mean().item():.3g} (seed {seed})"
    )


CASES = [
    # dtype,          n_q, n_k, d,  causal, mask
    (torch.float32, 37, 37, 32, False, None),
    (torch.float32, 70, 70, 64, True, None),
    (torch.float32, 70, 37, 32, True, None),  # causal with more queries than keys
    (torch.float32, 1, 1, 32, False, None),
    (torch.float32, 37, 70, 64, False, "additive"),
    (torch.float32, 70, 37, 48, False, "bool"),
    (torch.float16, 70, 70, 64, True, None),
    (torch.float16, 37, 70, 32, False, "bool"),
    (torch.bfloat16, 70, 70, 32, True, None),
    (torch.bfloat16, 37, 37, 64, False, "additive"),
]


@pytest.mark.parametrize(("dtype", "n_q", "n_k", "d", "causal", "mask_kind"), CASES)
def test_forward_and_backward_match_float64(device, dtype, n_q, n_k, d, causal, mask_kind):
    seed = _fresh_seed()
    b, h = 2, 2
    q, k, v, g = _inputs(device, dtype, b, h, n_q, n_k, d, seed)
    mask = _mask(mask_kind, b, h, n_q, n_k, dtype, device, g)
    out = flash_attention(q, k, v, attn_mask=mask, is_causal=causal)
    assert out.dtype == dtype and out.shape == (b, h, n_q, d)
    grad_out = torch.randn(out.shape, generator=g).to(device, dtype)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)

    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    want = reference_attention(q64, k64, v64, attn_mask=mask, is_causal=causal)
    want_grads = torch.autograd.grad(want, (q64, k64, v64), grad_out.double())
    _check(out, want, dtype, "output", seed)
    for name, got, ref in zip("qkv", grads, want_grads):
        _check(got, ref, dtype, f"d{name}", seed)


def test_custom_scale_and_strided_inputs(device):
    """(B, N, H, D) tensors viewed as (B, H, N, D): the kernel reads strides, no copies."""
    seed = _fresh_seed()
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(2, 45, 3, 2, 32, generator=g).to(device).requires_grad_()
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))  # (B, H, N, D), non-contiguous
    assert not q.is_contiguous()
    out = flash_attention(q, k, v, scale=0.3)
    out.square().sum().backward()
    qkv64 = qkv.detach().double().requires_grad_()
    q64, k64, v64 = (t.transpose(1, 2) for t in qkv64.unbind(2))
    want = reference_attention(q64, k64, v64, scale=0.3)
    want.square().sum().backward()
    _check(out, want, torch.float32, "output", seed)
    _check(qkv.grad, qkv64.grad, torch.float32, "dqkv", seed)


def test_fully_masked_rows_give_zeros_and_finite_gradients(device):
    q, k, v, _ = _inputs(device, torch.float32, 1, 2, 20, 24, 32, seed=3)
    keep = torch.ones(20, 24, dtype=torch.bool)
    keep[5] = False  # query 5 may attend to nothing
    keep = keep.to(device)
    out = flash_attention(q, k, v, attn_mask=keep)
    assert torch.equal(out[:, :, 5], torch.zeros_like(out[:, :, 5]))
    dq, dk, dv = torch.autograd.grad(out.sum(), (q, k, v))
    assert all(torch.isfinite(t).all() for t in (dq, dk, dv))
    assert torch.equal(dq[:, :, 5], torch.zeros_like(dq[:, :, 5]))
    rows = [i for i in range(20) if i != 5]
    want = reference_attention(q[:, :, rows], k, v, attn_mask=keep[rows])
    _check(out[:, :, rows], want, torch.float32, "unmasked rows", 3)


def test_dispatcher_runs_triton_when_forced_and_never_picks_the_interpreter_itself(device):
    q, k, v, _ = _inputs(device, torch.float32, 1, 2, 29, 29, 32, seed=5)
    out = attention(q, k, v, is_causal=True, backend="triton")
    torch.testing.assert_close(out, flash_attention(q, k, v, is_causal=True), rtol=0, atol=0)
    reasons = dict(explain(q, k, v))
    if device.type == "cpu":
        assert "interpreter is for tests" in reasons["triton"]
    with pytest.raises(Exception, match="dropout"):
        attention(q, k, v, dropout_p=0.1, backend="triton")


def test_kernel_rejects_what_it_cannot_do(device):
    q, k, v, _ = _inputs(device, torch.float32, 1, 1, 8, 8, 32, seed=0)
    with pytest.raises(ValueError, match="head dim"):
        flash_attention(q, k, v[..., :16])
    with pytest.raises(TypeError, match="dtypes differ"):
        flash_attention(q, k.half(), v)
