"""Architecture: parameter counts, FLOPs, token order, feature API and input checks."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from paperzoo.core import create_model, get_model
from paperzoo.hiera import model as M

IMAGE = ["hiera_tiny_224", "hiera_small_224", "hiera_base_224", "hiera_base_plus_224",
         "hiera_large_224", "hiera_huge_224"]  # fmt: skip
VIDEO = ["hiera_base_16x224", "hiera_base_plus_16x224", "hiera_large_16x224", "hiera_huge_16x224"]


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", IMAGE)
def test_image_param_counts_equal_timm_and_spec(name):
    with torch.device("meta"):
        ours = _count(getattr(M, name)())
        reference = _count(timm.create_model(name))
    assert ours == reference == get_model(name).num_params


def test_hiera_base_224_has_the_issue_parameter_count():
    with torch.device("meta"):
        assert _count(M.hiera_base_224()) == 51_524_968


@pytest.mark.parametrize("name", [*VIDEO, "hiera_toy_8x64"])
def test_video_param_counts_equal_spec(name):
    # The spec numbers were counted on the official hiera-transformer models (which cannot be
    # built on the meta device); test_parity re-checks hiera_base_16x224 against it directly.
    with torch.device("meta"):
        assert _count(getattr(M, name)()) == get_model(name).num_params


def test_hiera_base_224_flops_match_paper():
    """9.4 G in the paper = multiply-accumulates; torch's counter counts 2 FLOPs per MAC."""
    with torch.device("meta"):
        model = M.hiera_base_224()
        x = torch.empty(1, 3, 224, 224)
    with FlopCounterMode(display=False) as counter:
        model(x)
    gmacs = counter.get_total_flops() / 2e9
    assert abs(gmacs - 9.4) < 0.05, gmacs
    assert abs(get_model("hiera_base_224").flops - gmacs * 1e9) < 0.05e9


@pytest.mark.parametrize(
    ("size", "schedule"),
    [((16, 16), [(2, 2)] * 3), ((4, 16, 16), [(1, 2, 2)] * 3), ((8, 12), [(2, 2), (2, 1)])],
)
def test_unroll_makes_pooling_a_max_over_the_leading_axis(size, schedule):
    """After unroll, max over (B, prod(stride), N', C) chunks equals max-pooling the grid."""
    torch.manual_seed(0)
    C = 3
    grid = torch.randn(2, *size, C)
    unroll = M.Unroll(size, [1] * len(size), schedule)
    tokens = unroll(grid.flatten(1, -2))
    spatial = grid.movedim(-1, 1)
    pool = {2: F.max_pool2d, 3: F.max_pool3d}[len(size)]
    for stride in schedule:
        tokens = M._pool_unrolled(tokens, int(torch.tensor(stride).prod()))
        spatial = pool(spatial, kernel_size=stride, stride=stride)
    # Once every stride is consumed the order is raster again.
    torch.testing.assert_close(tokens, spatial.flatten(2).transpose(1, 2), rtol=0, atol=0)


@pytest.mark.parametrize("video", [False, True])
def test_reroll_inverts_unroll_at_every_stage(video):
    name = "hiera_base_16x224" if video else "hiera_tiny_224"
    size = (4, 32, 32) if video else (64, 64)
    model = getattr(M, name)(input_size=size, embed_dim=8, stages=(1, 1, 1, 1))
    grid = [n // s for n, s in zip(size, model.patch_stride)]
    x = torch.randn(2, *grid, 5)
    tokens = model.unroll(x.flatten(1, -2))
    torch.testing.assert_close(model.reroll(tokens, 0), x, rtol=0, atol=0)
    # A later stage: pool once (as q-pooling does), then reroll must give the pooled grid.
    pooled = M._pool_unrolled(tokens, 4)
    block = model.stage_ends[0] + 1
    stride = model.q_stride
    expected = {2: F.max_pool2d, 3: F.max_pool3d}[len(size)](
        x.movedim(-1, 1), kernel_size=stride, stride=stride
    ).movedim(1, -1)
    torch.testing.assert_close(model.reroll(pooled, block), expected, rtol=0, atol=0)


# Narrow versions of the real sizes keep these tests fast; the layout logic is the same.
SMALL = dict(embed_dim=16, stages=(1, 1, 2, 1))


def test_forward_intermediates_shapes_and_selection():
    model = M.hiera_tiny_224(input_size=(64, 64), num_classes=7, **SMALL).eval()
    x = torch.randn(2, 3, 64, 64)
    final, feats = model.forward_intermediates(x)
    assert [tuple(f.shape) for f in feats] == [
        (2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4), (2, 128, 2, 2)
    ]  # fmt: skip
    # The last stage map is the final tokens in raster order.
    torch.testing.assert_close(feats[-1].flatten(2).transpose(1, 2), final)
    torch.testing.assert_close(model.forward_head(final), model(x))
    last_two = model.forward_intermediates(x, indices=2, intermediates_only=True, output_fmt="NHWC")
    assert [tuple(f.shape) for f in last_two] == [(2, 4, 4, 64), (2, 2, 2, 128)]
    torch.testing.assert_close(last_two[0], feats[2].movedim(1, -1))
    video = M.hiera_base_16x224(input_size=(4, 32, 32), num_classes=3, **SMALL)
    maps = video.forward_intermediates(torch.randn(1, 3, 4, 32, 32), intermediates_only=True)
    assert tuple(maps[0].shape) == (1, 16, 2, 8, 8)


def test_masked_forward_keeps_whole_units():
    model = M.hiera_tiny_224(input_size=(64, 64), **SMALL).eval()
    x = torch.randn(2, 3, 64, 64)
    mask = model.get_random_mask(x, mask_ratio=0.5)
    assert mask.shape == (2, 4) and mask.sum(1).tolist() == [2, 2]
    tokens = model(x, mask=mask)
    assert tokens.shape == (2, 2, 128)  # 2 kept units, pooled 3 times to one token each
    feats = model.forward_intermediates(x, mask=mask, intermediates_only=True)
    assert tuple(feats[0].shape) == (2, 2, 8, 8, 16)  # (B, kept units, unit, C)
    # Pixels of dropped units never leak into kept ones (the patch conv sees them zeroed).
    x2 = x.clone()
    drop = (~mask[0]).nonzero()[0].item()
    x2[0, :, (drop // 2) * 32 : (drop // 2 + 1) * 32, (drop % 2) * 32 : (drop % 2 + 1) * 32] += 5
    feats2 = model.forward_intermediates(x2, mask=mask, intermediates_only=True)
    for a, b in zip(feats2, feats):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_bad_inputs_name_the_fix():
    model = M.hiera_tiny_224(input_size=(64, 64), **SMALL)
    with pytest.raises(ValueError, match=r"input_size=\(32, 32\)"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="True = keep"):
        model(torch.randn(1, 3, 64, 64), mask=torch.ones(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="divisible"):
        M.hiera_tiny_224(input_size=(40, 40))
    with pytest.raises(ValueError, match="one value per input dim"):
        M.Hiera(input_size=(8, 64, 64))


def test_create_model_by_name_with_overrides():
    model = create_model("hiera_toy_8x64", num_classes=5)
    out = model(torch.randn(2, 3, 8, 64, 64))
    assert out.shape == (2, 5)
