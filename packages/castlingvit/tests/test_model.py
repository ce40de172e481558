"""Architectures: parameter counts against timm's DeiT, MACs (attention terms counted, by an
independent formula), the castling switch on whole models, and Castling-MViTv2."""

from __future__ import annotations

import pytest
import torch

from paperzoo.castlingvit import model as M
from paperzoo.castlingvit.flops import count_macs, inference_macs
from paperzoo.kernels import LinearAngularAttention
from paperzoo.kernels.castling import castle, enable_sparse_branch, set_sparse_threshold

DEIT = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}


@pytest.mark.parametrize("size", sorted(DEIT))
def test_softmax_twins_are_timms_deit_and_castling_adds_only_the_dwconv(size):
    import timm

    with torch.device("meta"):
        ours = getattr(M, f"deit_{size}")()
        castling = getattr(M, f"castling_deit_{size}")()
        reference = timm.create_model(f"deit_{size}_patch16_224")
    n_ref = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in ours.parameters()) == n_ref
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    heads = DEIT[size][1]
    n_castling = sum(p.numel() for p in castling.parameters())
    assert n_castling == n_ref + 12 * heads * 9  # a (9, 1) depthwise kernel per head, no bias
    extra = set(castling.state_dict()) - set(reference.state_dict())
    assert extra == {f"blocks.{i}.attn.dconv.weight" for i in range(12)}


def test_deit_tiny_counts_are_the_papers():
    with torch.device("meta"):
        model = M.deit_tiny()
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 5.72  # DeiT Table 1


def test_macs_count_every_attention_term_exactly():
    """An independent formula for the tiny models: linear layers and patch conv, plus SDPA's
    2·N²·C, or linear-angular 2·N·C·d + the (9, 1) DWConv's 9·N·C (+ the branch's 2·N²·C)."""
    n, c, heads, depth = 197, 48, 2, 4
    d = c // heads
    base = 196 * c * 4 + depth * 12 * n * c * c + c * 10  # patch conv, qkv/proj/MLP, head
    softmax_attn = depth * 2 * n * n * c
    linear_attn = depth * (2 * n * c * d + 9 * n * c)
    with torch.device("meta"):
        softmax, castling = M.vit_tiny_mnist(), M.castling_vit_tiny_mnist()
    shape = (1, 1, 28, 28)
    assert count_macs(softmax, shape) == base + softmax_attn  # SDPA is counted
    assert inference_macs(castling, shape) == base + linear_attn
    assert count_macs(castling, shape) == base + linear_attn + softmax_attn  # with the branch
    assert inference_macs(castling, shape) < count_macs(softmax, shape)
    assert castling.blocks[0].attn.sparse_reg  # inference_macs did not castle the model


def test_deit_tiny_macs_drop_with_castling():
    with torch.device("meta"):
        softmax, castling = M.deit_tiny(), M.castling_deit_tiny()
    soft, cast = count_macs(softmax, (1, 3, 224, 224)), inference_macs(castling, (1, 3, 224, 224))
    assert soft == pytest.approx(1.2537e9, rel=1e-4) and cast == pytest.approx(1.1370e9, rel=1e-4)


def test_castling_a_whole_vit_changes_no_output_once_the_mask_is_zero():
    torch.manual_seed(0)
    model = M.castling_vit_tiny_mnist().eval()
    x = torch.randn(3, 1, 28, 28)
    # At init the softmax over 197 tokens is flat (~1/197 < 0.02): the official mask keeps
    # nothing yet. Threshold 0 keeps every weight, so the branch visibly matters.
    set_sparse_threshold(model, 0.0)
    with torch.no_grad():
        with_branch = model(x)
        set_sparse_threshold(model, 1.0)
        at_zero = model(x)
        assert castle(model) == 4
        castled = model(x)
    assert not torch.allclose(with_branch, castled)
    assert torch.equal(at_zero, castled)
    enable_sparse_branch(model, 0.0)
    with torch.no_grad():
        torch.testing.assert_close(model(x), with_branch, rtol=0, atol=0)


def test_the_adapter_takes_timms_arguments_and_refuses_what_it_lacks():
    block = M.CastlingAttention(16, num_heads=2, qkv_bias=True, norm_layer=torch.nn.LayerNorm)
    assert isinstance(block, LinearAngularAttention) and block.sparse_reg
    with pytest.raises(ValueError, match="q/k norm"):
        M.CastlingAttention(16, num_heads=2, qk_norm=True)
    with pytest.raises(ValueError, match="no attention mask"):
        block(torch.randn(1, 4, 16), attn_mask=torch.ones(4, 4, dtype=torch.bool))
    model = M.castling_vit_tiny_mnist(sparse_reg=False, sparse_threshold=0.1)
    assert all(not b.attn.sparse_reg and b.attn.sparse_threshold == 0.1 for b in model.blocks)


# -- Castling-MViTv2 -------------------------------------------------------------------------


def test_unpooled_castling_mvit_attention_is_the_official_block():
    """Without pooling, the MViT attention must be exactly LinearAngularAttention."""
    torch.manual_seed(0)
    ours = M.CastlingMultiScaleAttention(32, 32, (1, 4, 4), num_heads=4, qkv_bias=True,
                                         has_cls_embed=True).double()  # fmt: skip
    block = LinearAngularAttention(32, num_heads=4, qkv_bias=True, sparse_reg=True).double()
    block.load_state_dict(ours.state_dict())
    x = torch.randn(2, 17, 32, dtype=torch.float64)
    out, thw = ours(x, (1, 4, 4))
    assert thw == (1, 4, 4)
    torch.testing.assert_close(out, block(x), rtol=1e-12, atol=1e-12)


def test_pooled_castling_mvit_attention_uses_values_at_the_queries_resolution():
    torch.manual_seed(0)
    attn = M.CastlingMultiScaleAttention(
        16, 16, (1, 8, 8), num_heads=2, qkv_bias=True, kernel_q=(1, 3, 3),
        kernel_kv=(1, 3, 3), stride_q=(1, 2, 2), stride_kv=(1, 4, 4), has_cls_embed=False,
        residual_pooling=True,
    )  # fmt: skip
    out, thw = attn(torch.randn(2, 64, 16), (1, 8, 8))
    assert out.shape == (2, 16, 16) and thw == (1, 4, 4)
    assert set(attn.state_dict()) >= {"qkv.weight", "proj.weight", "pool_q.weight", "dconv.weight"}
    with pytest.raises(ValueError, match="rel_pos_spatial"):
        M.CastlingMultiScaleAttention(16, 16, (1, 8, 8), num_heads=2, rel_pos_spatial=True)


def test_castling_mvitv2_builds_runs_and_castles_at_tiny_size():
    torch.manual_seed(0)
    model = M.castling_mvitv2_tiny(spatial_size=64, num_classes=5, drop_path_rate=0.0)
    blocks = [m for m in model.modules() if isinstance(m, M.CastlingMultiScaleAttention)]
    assert len(blocks) == 10 and all(b.sparse_reg for b in blocks)
    x = torch.randn(2, 3, 64, 64)
    model.train()
    loss = model(x).logsumexp(-1).mean()
    loss.backward()
    assert all(b.sparse_mass is not None for b in blocks)
    assert blocks[3].dconv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        set_sparse_threshold(model, 1.0)
        at_zero = model(x)
        castle(model)
        assert torch.equal(model(x), at_zero)


def test_castling_mvitv2_macs_at_224_and_at_a_small_grid():
    """At 224² Castling-MViTv2-T saves MACs; at 64² (kv pooled to 4x4 = 16 tokens) the
    softmax attention is already cheap and the extra terms (v pooled like q, DWConv) cost more:
    the saving depends on the token count, as it should."""
    from paperzoo.mvit.model import mvitv2_tiny

    with torch.device("meta"):
        castling, softmax = M.castling_mvitv2_tiny(), mvitv2_tiny()
        castling_64 = M.castling_mvitv2_tiny(spatial_size=64)
        softmax_64 = mvitv2_tiny(spatial_size=64, rel_pos_spatial=False)
    big = (1, 3, 224, 224)
    assert inference_macs(castling, big) < 0.92 * count_macs(softmax, big)
    small = (1, 3, 64, 64)
    assert inference_macs(castling_64, small) > count_macs(softmax_64, small)
