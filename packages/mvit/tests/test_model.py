"""Architecture: parameter counts and FLOPs against the papers and the reference libraries."""

from __future__ import annotations

import pytest
import torch

from paperzoo.mvit import model as M
from paperzoo.mvit.flops import count_macs


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_mvit_b_16x4_params_and_flops():
    with torch.device("meta"):
        model = M.mvit_base_16x4()
    # pytorchvideo's mvit_base_16x4 and torchvision's mvit_v1_b both have 36,610,672.
    assert _params(model) == 36_610_672
    macs = count_macs(model, (1, 3, 16, 224, 224))
    assert macs / 1e9 == pytest.approx(70.5, rel=3e-3)  # paper: 70.5 GFLOPs (MACs) per view


@pytest.mark.parametrize(
    ("ours", "timm_name", "gmacs"),
    [("mvitv2_tiny", "mvitv2_tiny", 4.7), ("mvitv2_small", "mvitv2_small", 7.0),
     ("mvitv2_base", "mvitv2_base", 10.1)],
)  # fmt: skip
def test_mvitv2_image_sizes_match_timm(ours, timm_name, gmacs):
    import timm

    with torch.device("meta"):
        model = getattr(M, ours)()
        reference = timm.create_model(timm_name)
    assert _params(model) == _params(reference)
    assert count_macs(model, (1, 3, 224, 224)) / 1e9 == pytest.approx(gmacs, rel=0.02)


def test_video_sizes_match_torchvision():
    import torchvision.models.video as tvv

    with torch.device("meta"):
        assert _params(M.mvit_base_16x4()) == _params(tvv.mvit_v1_b())
        v2 = M.mvitv2_small_16x4()
        assert _params(v2) == _params(tvv.mvit_v2_s()) == 34_537_744
    assert count_macs(v2, (1, 3, 16, 224, 224)) / 1e9 == pytest.approx(64.2, rel=3e-3)


def test_mvit_b_32x3_and_image_b():
    with torch.device("meta"):
        b32 = M.mvit_base_32x3()
        b_img = M.mvit_base_224()
    assert _params(b32) == 36_611_440  # pytorchvideo mvit_base_32x3: 8 more temporal positions
    assert count_macs(b32, (1, 3, 32, 224, 224)) / 1e9 == pytest.approx(170, rel=3e-3)
    assert _params(b_img) == 36_982_696  # pytorchvideo mvit_base_16 with 1000 classes
    assert count_macs(b_img, (1, 3, 224, 224)) / 1e9 == pytest.approx(7.8, rel=5e-3)


def test_stage_structure_of_mvit_b():
    """Table 3 of the paper: 4 scale stages of 1 / 2 / 11 / 2 blocks, heads 1-2-4-8, token grid
    8x56x56 -> 8x28x28 -> 8x14x14 -> 8x7x7. In v1 the width doubles in the last MLP of each
    stage, so the stages output 192 / 384 / 768 / 768 channels."""
    with torch.device("meta"):
        model = M.mvit_base_16x4()
    assert [f["num_chs"] for f in model.feature_info] == [192, 384, 768, 768]
    assert [f["grid"] for f in model.feature_info] == [
        (8, 56, 56),
        (8, 28, 28),
        (8, 14, 14),
        (8, 7, 7),
    ]
    heads = [b.attn.num_heads for b in model.blocks]
    assert heads == [1, 2, 2] + [4] * 11 + [8, 8]
    pooled_q = [i for i, b in enumerate(model.blocks) if b.attn.pool_q is not None]
    assert pooled_q == [1, 3, 14]
    assert model.blocks[0].attn.pool_k.stride == (1, 8, 8)
    assert model.blocks[1].attn.pool_k.stride == (1, 4, 4)
    assert model.blocks[15].attn.pool_k.stride == (1, 1, 1)


def test_forward_shapes_and_intermediates():
    torch.manual_seed(0)
    model = M.mvit_tiny_video(num_classes=7).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        logits = model(x)
        feats = model.forward_intermediates(x)
        tokens = model.forward_features(x)
    assert logits.shape == (2, 7)
    assert [tuple(f.shape) for f in feats] == [
        (2, 64, 4, 8, 8),
        (2, 128, 4, 4, 4),
        (2, 128, 4, 2, 2),
    ]
    assert tokens.shape == (2, 1 + 4 * 2 * 2, 128)
    torch.testing.assert_close(model.forward_head(tokens), logits)


def test_wrong_input_size_names_the_fix():
    model = M.mvit_tiny_video()
    with pytest.raises(ValueError, match="temporal_size=/spatial_size="):
        model(torch.zeros(1, 3, 16, 32, 32))


def test_image_model_takes_images():
    torch.manual_seed(0)
    model = M.mvitv2_tiny(spatial_size=32, num_classes=5).eval()
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(image)
        same = model(image[:, :, None])  # (B, C, 1, H, W) is accepted too
    assert out.shape == (2, 5)
    torch.testing.assert_close(out, same)


def test_drop_path_and_dropout_only_in_training():
    torch.manual_seed(0)
    model = M.mvit_tiny_video(drop_path_rate=0.5, head_dropout=0.5)
    x = torch.randn(2, 3, 8, 32, 32)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x))
