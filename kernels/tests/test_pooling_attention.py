"""MViT pooling attention: parity with torchvision's MultiscaleAttention, SlowFast options."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from paperzoo.kernels import MultiScaleAttention, attention_pool
from paperzoo.kernels.pooling_attention import convert_torchvision_state_dict

tv_mvit = pytest.importorskip("torchvision.models.video.mvit")

NORM = partial(nn.LayerNorm, eps=1e-6)

CONFIGS = [
    # MViTv2-S stage transition: pooled q, strided kv, rel-pos, residual pooling
    dict(kernel_q=[3, 3, 3], kernel_kv=[3, 3, 3], stride_q=[1, 2, 2], stride_kv=[1, 2, 2],
         residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True),
    # MViTv2 block inside a stage: q unpooled, kv strided by 4 (different q/k grids)
    dict(kernel_q=[3, 3, 3], kernel_kv=[3, 3, 3], stride_q=[1, 1, 1], stride_kv=[1, 4, 4],
         residual_pool=True, residual_with_cls_embed=True, rel_pos_embed=True),
    # MViTv1-B: no rel-pos, no residual pooling, temporal kv stride
    dict(kernel_q=[1, 1, 1], kernel_kv=[3, 3, 3], stride_q=[1, 1, 1], stride_kv=[2, 2, 2],
         residual_pool=False, residual_with_cls_embed=True, rel_pos_embed=False),
]  # fmt: skip


def _pair(cfg, input_size=(4, 8, 8), dim=32, dim_out=64, heads=2):
    torch.manual_seed(0)
    ref = tv_mvit.MultiscaleAttention(list(input_size), dim, dim_out, heads, norm_layer=NORM, **cfg)
    ours = MultiScaleAttention(
        dim,
        dim_out,
        input_size,
        num_heads=heads,
        qkv_bias=True,
        kernel_q=cfg["kernel_q"],
        kernel_kv=cfg["kernel_kv"],
        stride_q=cfg["stride_q"],
        stride_kv=cfg["stride_kv"],
        norm_layer=NORM,
        has_cls_embed=True,
        rel_pos_spatial=cfg["rel_pos_embed"],
        rel_pos_temporal=cfg["rel_pos_embed"],
        residual_pooling=cfg["residual_pool"],
        residual_with_cls_embed=cfg["residual_with_cls_embed"],
    )
    ours.load_state_dict(convert_torchvision_state_dict(ref.state_dict()))  # strict
    return ref, ours


@pytest.mark.parametrize("cfg", CONFIGS)
def test_matches_torchvision_outputs_and_gradients(cfg):
    ref, ours = _pair(cfg)
    # Non-trivial norms, so a swapped norm_q/norm_k would show.
    with torch.no_grad():
        for p in ref.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)
    ours.load_state_dict(convert_torchvision_state_dict(ref.state_dict()))
    thw = (4, 8, 8)
    x = torch.randn(2, 1 + 4 * 8 * 8, 32)
    want, want_thw = ref(x, thw)
    got, got_thw = ours(x, thw)
    assert got_thw == tuple(want_thw)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # Gradients in float64, so any difference is a wiring bug rather than summation order.
    ref, ours, x = ref.double(), ours.double(), x.double()
    want, _ = ref(x, thw)
    got, _ = ours(x, thw)
    g = torch.randn_like(got)
    ref_names = [n for n, _ in ref.named_parameters()]
    want_grads = torch.autograd.grad(want, list(ref.parameters()), g)
    want_by_name = convert_torchvision_state_dict(dict(zip(ref_names, want_grads)))
    got_named = dict(ours.named_parameters())
    got_grads = torch.autograd.grad(got, list(got_named.values()), g)
    assert set(got_named) == set(want_by_name)
    for name, gr in zip(got_named, got_grads):
        torch.testing.assert_close(gr, want_by_name[name], rtol=1e-9, atol=1e-9, msg=name)


def test_parameter_names_follow_slowfast():
    _, ours = _pair(CONFIGS[0])
    names = set(dict(ours.named_parameters()))
    assert names == {
        "qkv.weight", "qkv.bias", "proj.weight", "proj.bias",
        "pool_q.weight", "norm_q.weight", "norm_q.bias",
        "pool_k.weight", "norm_k.weight", "norm_k.bias",
        "pool_v.weight", "norm_v.weight", "norm_v.bias",
        "rel_pos_h", "rel_pos_w", "rel_pos_t",
    }  # fmt: skip
    assert ours.pool_q.weight.shape == (32, 1, 3, 3, 3)  # depthwise over the head dim
    assert ours.rel_pos_h.shape == (2 * 4 - 1, 32)  # 8 // stride 2 = 4 positions per side


def test_attention_pool_handles_the_cls_token_and_the_grid():
    x = torch.randn(2, 3, 1 + 2 * 4 * 4, 5)
    pooled, thw = attention_pool(x, nn.MaxPool3d((1, 2, 2), (1, 2, 2)), (2, 4, 4))
    assert thw == (2, 2, 2) and pooled.shape == (2, 3, 1 + 8, 5)
    assert torch.equal(pooled[:, :, 0], x[:, :, 0])  # cls token passes through
    grid = x[:, :, 1:].reshape(2, 3, 2, 4, 4, 5)
    want = grid.reshape(2, 3, 2, 2, 2, 2, 2, 5).amax(dim=(4, 6)).reshape(2, 3, 8, 5)
    torch.testing.assert_close(pooled[:, :, 1:], want)
    no_cls, _ = attention_pool(
        x[:, :, 1:], nn.MaxPool3d((1, 2, 2), (1, 2, 2)), (2, 4, 4), has_cls_embed=False
    )
    torch.testing.assert_close(no_cls, want)
    with pytest.raises(ValueError, match="grid"):
        attention_pool(x, nn.MaxPool3d(1), (2, 4, 5))


@pytest.mark.parametrize(
    "mode, pool_first", [("max", False), ("avg", False), ("conv", True), ("conv_unshared", True)]
)
def test_slowfast_modes_shapes_and_cls_handling(mode, pool_first):
    torch.manual_seed(0)
    block = MultiScaleAttention(
        24, 48, (3, 4, 4), num_heads=4, kernel_q=(3, 3, 3), kernel_kv=(3, 3, 3),
        stride_q=(1, 2, 2), stride_kv=(1, 2, 2), mode=mode, pool_first=pool_first,
        has_cls_embed=False,
    )  # fmt: skip
    x = torch.randn(2, 48, 24)  # avg pooling needs every axis >= its kernel (torch's rule)
    out, thw = block(x, (3, 4, 4))
    assert thw == (3, 2, 2) and out.shape == (2, 12, 48)
    # Without a cls token, tokens are exchangeable only through attention: permuting the batch
    # permutes the output (no cross-sample leakage).
    out_perm, _ = block(x.flip(0), (3, 4, 4))
    torch.testing.assert_close(out_perm, out.flip(0))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="pool_first"):
        MultiScaleAttention(8, 8, (1, 2, 2), num_heads=2, mode="conv_unshared")
    with pytest.raises(ValueError, match="pooling mode"):
        MultiScaleAttention(8, 8, (1, 2, 2), num_heads=2, mode="median")
