"""The architecture: parameter counts, timm parity, the top-down wiring, cross vs cross-self,
patches, masks, position embeddings and the video tubelets."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from paperzoo.core import create_model, get_model
from paperzoo.diffmae.model import (
    SIZES,
    DiffMAE,
    MaskedViTEncoder,
    ViTClassifier,
    build_classifier,
    build_pretraining_model,
    patchify,
    random_masking,
    sincos_pos_embed,
    top_down_sources,
    unpatchify,
)
from paperzoo.diffmae.plugin import PARAMS


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Encoders (every parameter, the fixed position embeddings included): timm's
# vit_{base,large}_patch16_224 / vit_huge_patch14_224 without the head. ViT-B/16 is MAE's
# "86M"-class encoder (85.8M), ViT-L/16 the paper's "304 M" with its 1000-way head.
ENCODERS = {
    "vit_base_patch16": 85_798_656,
    "vit_large_patch16": 303_301_632,
    "vit_huge_patch14": 630_764_800,
    "vit_large_patch16_16x224": 305_492_992,  # + 8x196 temporal tokens, Conv3d 2x16x16 stem
}


@pytest.mark.parametrize("size", list(ENCODERS))
def test_encoder_parameter_counts(size):
    with torch.device("meta"):
        assert _count(MaskedViTEncoder(**SIZES[size])) == ENCODERS[size]


@pytest.mark.parametrize(
    ("size", "timm_name"),
    [("vit_base_patch16", "vit_base_patch16_224"), ("vit_large_patch16", "vit_large_patch16_224"),
     ("vit_huge_patch14", "vit_huge_patch14_224")],
)  # fmt: skip
def test_classifier_counts_equal_timm_and_the_paper(size, timm_name):
    with torch.device("meta"):
        ours = _count(build_classifier(size, num_classes=1000))
        ref = _count(
            timm.create_model(timm_name, pretrained=False, num_classes=1000, global_pool="avg")
        )
    assert ours == ref
    if size == "vit_large_patch16":
        assert ours == 304_326_632 and round(ours / 1e6) == 304  # the paper's table: 304 M


def test_registered_counts_are_the_built_models():
    with torch.device("meta"):
        for name, expected in PARAMS.items():
            assert _count(create_model(name)) == expected, name
            assert get_model(name).num_params == expected


def test_classifier_matches_timm_with_the_same_weights():
    torch.manual_seed(0)
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=7,
        global_pool="avg", qkv_bias=True,
    ).eval()  # fmt: skip
    ours = ViTClassifier(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3,
                         num_classes=7).eval()  # fmt: skip
    ours.load_state_dict(ref.state_dict(), strict=True)  # the same keys
    x = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_top_down_sources():
    assert top_down_sources(4, 4) == (3, 2, 1, 0)
    assert top_down_sources(12, 12) == tuple(range(11, -1, -1))
    assert top_down_sources(24, 8) == (23, 20, 16, 13, 10, 7, 3, 0)
    assert top_down_sources(5, 1) == (4,)
    with pytest.raises(ValueError, match=r"1\.\.4"):
        top_down_sources(4, 5)


def test_decoder_block_j_reads_encoder_block_sources_j():
    torch.manual_seed(0)
    model = build_pretraining_model("tiny_mnist", "diffmae").eval()
    assert model.decoder_sources == (3, 2, 1, 0)
    enc_out, ctx_in = {}, {}
    for i, blk in enumerate(model.blocks):
        blk.register_forward_hook(lambda m, a, out, i=i: enc_out.__setitem__(i, out))
    model.norm.register_forward_hook(lambda m, a, out: enc_out.__setitem__("norm", out))
    for j, blk in enumerate(model.decoder_blocks):
        blk.norm_context.register_forward_hook(lambda m, a, out, j=j: ctx_in.__setitem__(j, a[0]))
    x = torch.randn(2, 1, 28, 28)
    ids_keep, ids_mask = random_masking(2, model.num_patches, 0.75)
    feats = model.forward_encoder(x, ids_keep)
    model.forward_decoder(feats, torch.randn(2, ids_mask.shape[1], model.patch_dim), ids_mask,
                          torch.tensor([10, 900]))  # fmt: skip
    assert torch.equal(ctx_in[0], enc_out["norm"])  # the last block, after the encoder norm
    assert torch.equal(ctx_in[1], enc_out[2])
    assert torch.equal(ctx_in[2], enc_out[1])
    assert torch.equal(ctx_in[3], enc_out[0])
    # Changing what encoder block 0 gives changes only what the last decoder block sees.
    feats2 = list(feats)
    feats2[0] = feats2[0] + 1.0
    model.forward_decoder(feats2, torch.zeros(2, ids_mask.shape[1], model.patch_dim), ids_mask,
                          torch.tensor([5, 5]))  # fmt: skip
    assert torch.equal(ctx_in[3], feats2[0]) and torch.equal(ctx_in[0], feats[3])


def test_cross_and_cross_self_differ_exactly_by_the_self_attention():
    torch.manual_seed(0)
    cs = build_pretraining_model("tiny_mnist", "diffmae", decoder="cross_self").eval()
    cross = build_pretraining_model("tiny_mnist", "diffmae", decoder="cross").eval()
    extra = set(cs.state_dict()) - set(cross.state_dict())
    assert set(cross.state_dict()) < set(cs.state_dict())
    assert extra == {f"decoder_blocks.{j}.{m}.{p}" for j in range(4)
                     for m, p in [("norm1", "weight"), ("norm1", "bias"), ("attn.qkv", "weight"),
                                  ("attn.qkv", "bias"), ("attn.proj", "weight"),
                                  ("attn.proj", "bias")]}  # fmt: skip
    d = cs.decoder_blocks[0]
    per_block = sum(p.numel() for p in [*d.norm1.parameters(), *d.attn.parameters()])
    assert (
        _count(cs) - _count(cross) == 4 * per_block == 4 * (2 * 64 + 64 * 192 + 192 + 64 * 64 + 64)
    )
    # With the self-attention's output projection zeroed, cross-self computes what cross does.
    cs.load_state_dict(cross.state_dict(), strict=False)
    for blk in cs.decoder_blocks:
        torch.nn.init.zeros_(blk.attn.proj.weight)
        torch.nn.init.zeros_(blk.attn.proj.bias)
    x = torch.randn(2, 1, 28, 28)
    ids_keep, ids_mask = random_masking(2, 16, 0.75)
    noisy, t = torch.randn(2, 12, 49), torch.tensor([3, 700])
    a = cross.forward_decoder(cross.forward_encoder(x, ids_keep), noisy, ids_mask, t)
    b = cs.forward_decoder(cs.forward_encoder(x, ids_keep), noisy, ids_mask, t)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.nn.init.normal_(cs.decoder_blocks[1].attn.proj.weight)  # self-attention back on
    c = cs.forward_decoder(cs.forward_encoder(x, ids_keep), noisy, ids_mask, t)
    assert (a - c).abs().max() > 1e-3


def test_decoder_depends_on_timestep_and_visible_patches_only_through_the_encoder():
    torch.manual_seed(0)
    model = build_pretraining_model("tiny_mnist", "diffmae").eval()
    x = torch.randn(1, 1, 28, 28)
    ids_keep, ids_mask = random_masking(1, 16, 0.75)
    feats = model.forward_encoder(x, ids_keep)
    noisy = torch.randn(1, 12, 49)
    a = model.forward_decoder(feats, noisy, ids_mask, torch.tensor([10]))
    b = model.forward_decoder(feats, noisy, ids_mask, torch.tensor([900]))
    assert (a - b).abs().max() > 1e-4  # the timestep embedding reaches the output
    # Masked pixels of the input do not matter: the encoder only sees the kept patches.
    x2 = model.unpatchify(model.patchify(x).scatter(1, ids_mask[..., None].expand(-1, -1, 49),
                                                    torch.randn(1, 12, 49)))  # fmt: skip
    feats2 = model.forward_encoder(x2, ids_keep)
    assert all(torch.equal(f, g) for f, g in zip(feats, feats2))


def test_patchify_round_trip_and_mae_order():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    p = patchify(x, (4, 4))
    assert p.shape == (2, 4, 48)
    # MAE: 'nchpwq->nhwpqc': patch (0, 1), pixel (row 0, col 1), channel 2.
    assert p[0, 1, (0 * 4 + 1) * 3 + 2] == x[0, 2, 0, 4 + 1]
    assert torch.equal(unpatchify(p, (4, 4), (2, 2), 3), x)
    v = torch.randn(2, 3, 4, 8, 8)
    pv = patchify(v, (2, 4, 4))
    assert pv.shape == (2, 2 * 2 * 2, 2 * 4 * 4 * 3)
    assert torch.equal(unpatchify(pv, (2, 4, 4), (2, 2, 2), 3), v)


def test_random_masking_keeps_the_right_number_and_partitions():
    g = torch.Generator().manual_seed(0)
    keep, mask = random_masking(5, 196, 0.75, generator=g)
    assert keep.shape == (5, 49) and mask.shape == (5, 147)
    both = torch.cat([keep, mask], dim=1).sort(dim=1).values
    assert torch.equal(both, torch.arange(196).expand(5, -1))
    assert not torch.equal(keep[0], keep[1])
    keep_v, _ = random_masking(2, 8 * 14 * 14, 0.9)
    assert keep_v.shape == (2, int(1568 * 0.1))


def _mae_2d_sincos(dim: int, g: int) -> np.ndarray:
    """MAE's util/pos_embed.py, written out: the reference for the 2D embedding."""

    def one_d(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid = np.meshgrid(np.arange(g, dtype=np.float32), np.arange(g, dtype=np.float32))
    grid = np.stack(grid, axis=0).reshape(2, 1, g, g)
    emb = np.concatenate([one_d(dim // 2, grid[0]), one_d(dim // 2, grid[1])], axis=1)
    return np.concatenate([np.zeros([1, dim]), emb], axis=0)


def test_position_embedding_is_maes():
    ours = sincos_pos_embed(64, (14, 14), cls_token=True)[0].numpy()
    np.testing.assert_allclose(ours, _mae_2d_sincos(64, 14), atol=1e-6)
    model = build_pretraining_model("tiny_mnist", "diffmae")
    assert not model.pos_embed.requires_grad and not model.decoder_pos_embed.requires_grad
    np.testing.assert_allclose(model.pos_embed[0].numpy(), _mae_2d_sincos(64, 4), atol=1e-6)
    assert build_classifier("tiny_mnist", num_classes=10).pos_embed.requires_grad


def test_video_model_uses_tubelets_and_the_video_mask_ratio():
    model = create_model("diffmae_tiny_video")
    assert isinstance(model, DiffMAE) and model.mask_ratio == 0.9
    assert model.patch_embed.proj.kernel_size == (2, 4, 4) and model.grid == (2, 4, 4)
    assert model.num_patches == 32 and model.patch_dim == 2 * 4 * 4 * 3
    x = torch.randn(2, 3, 4, 16, 16)
    keep, mask = random_masking(2, 32, model.mask_ratio)
    feats = model.forward_encoder(x, keep)
    assert feats[-1].shape == (2, 1 + 3, 32)
    out = model.forward_decoder(feats, torch.randn(2, 29, 96), mask, torch.tensor([1, 999]))
    assert out.shape == (2, 29, 96)
    clf = create_model("diffmae_finetune_tiny_video")
    assert clf(x).shape == (2, 10)
    with torch.device("meta"):
        big = create_model("diffmae_vit_large_patch16_16x224")
    assert big.grid == (8, 14, 14) and big.mask_ratio == 0.9


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="did you mean 'vit_large_patch16'"):
        build_pretraining_model("vit_lrge_patch16")
    with pytest.raises(ValueError, match="decoder must be"):
        build_pretraining_model("tiny_mnist", "diffmae", decoder="joint")
    with pytest.raises(ValueError, match="method must be"):
        build_pretraining_model("tiny_mnist", "ddpm")
