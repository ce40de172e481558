"""Architecture: parameter counts against timm's ViT-B (built offline, no weights), token
counts of the paper's inputs, the registered counts, and the classifier's three modes."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from paperzoo.diffmae.model import sincos_pos_embed
from paperzoo.mavil import model as M
from paperzoo.mavil.plugin import PARAMS


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _timm_vit_base(**kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0, **kwargs)


def test_audio_encoder_equals_timm_vit_base():
    with torch.device("meta"):
        encoder = M.build_pretraining_model("vit_base").audio_encoder
    ref = _timm_vit_base(img_size=(1024, 128), in_chans=1)
    assert encoder.num_patches == 512  # 64 x 8 patches of a 1024 x 128 fbank
    assert _count(encoder) == _count(ref) == 85_648_128


def test_video_encoder_is_timm_vit_base_with_a_tubelet_stem():
    with torch.device("meta"):
        encoder = M.build_pretraining_model("vit_base").video_encoder
    ref = _timm_vit_base()
    assert encoder.num_patches == 784  # 4 x 14 x 14 tubelets of 8 frames at 224
    body = _count(encoder.blocks) + _count(encoder.norm)
    assert body == _count(ref.blocks) + _count(ref.norm)
    stem = 3 * 2 * 16 * 16 * 768 + 768  # Conv3d kernel (2, 16, 16)
    assert _count(encoder.patch_embed) == stem
    assert _count(encoder) == body + stem + 768 + 785 * 768  # cls token + positions


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_registered_parameter_counts(name):
    with torch.device("meta"):
        model = getattr(M, name)()
    assert _count(model) == PARAMS[name]


def test_joint_classifier_is_two_vit_b_three_joint_blocks_and_a_2x768_head():
    with torch.device("meta"):
        model = M.mavil_vit_base_audioset()
    assert len(model.fusion_blocks) == 3 and model.head.in_features == 2 * 768
    assert model.head.out_features == 527


@pytest.mark.parametrize("modality", ["audio", "video", "joint"])
def test_classifier_modalities(modality):
    torch.manual_seed(0)
    model = M.build_classifier("test", num_classes=5, modality=modality).eval()
    audio, video = torch.randn(2, 1, 32, 128), torch.randn(2, 3, 4, 16, 16)
    logits = model(audio if modality != "video" else None, video if modality != "audio" else None)
    assert logits.shape == (2, 5)
    assert (model.audio_encoder is None) == (modality == "video")
    assert (model.video_encoder is None) == (modality == "audio")


def _mae_2d_sincos(dim: int, h: int, w: int) -> np.ndarray:
    """MAE's ``util/pos_embed.py`` ``get_2d_sincos_pos_embed`` on an (h, w) grid, as AudioMAE's
    ``get_2d_sincos_pos_embed_flexible`` generalises it (numpy, transcribed)."""
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))

    def one(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    return np.concatenate([one(dim // 2, grid[0]), one(dim // 2, grid[1])], axis=1)


def test_audio_positions_are_mae_sincos_on_the_rectangular_fbank_grid():
    # The audio encoder's grid is 64 x 8 at ViT-B (time x frequency), 6 x 8 at tiny; diffmae's
    # sincos_pos_embed gives MAE's numbers there (diffusers' from_grid helper).
    torch.manual_seed(0)
    model = M.mavil_tiny_pretrain()
    h, w = model.audio_encoder.grid
    assert (h, w) == (6, 8)
    ref = torch.from_numpy(_mae_2d_sincos(64, h, w)).float()
    torch.testing.assert_close(model.audio_encoder.pos_embed[0, 1:], ref, atol=1e-6, rtol=0)
    assert model.audio_encoder.pos_embed[0, 0].abs().sum() == 0  # the class token's zero row
    torch.testing.assert_close(model.audio_decoder.pos_embed[0], ref, atol=1e-6, rtol=0)
    # a transposed grid gives other numbers: the axes are not interchangeable
    wrong = torch.from_numpy(_mae_2d_sincos(64, w, h)).float()
    assert not torch.allclose(sincos_pos_embed(64, (w, h), cls_token=False)[0], ref)
    torch.testing.assert_close(
        sincos_pos_embed(64, (w, h), cls_token=False)[0], wrong, atol=1e-6, rtol=0
    )


def test_timm_sincos_is_a_channel_permutation_of_mae_not_a_drop_in():
    # Why timm's build_sincos2d_pos_embed is not used: its channels are [sin h, sin w, cos h,
    # cos w] (or interleaved), MAE's are [sin w, cos w, sin h, cos h].
    from timm.layers import build_sincos2d_pos_embed

    ref = torch.from_numpy(_mae_2d_sincos(32, 4, 8)).float()
    for reverse in (False, True):
        for interleave in (False, True):
            t = build_sincos2d_pos_embed(
                [4, 8], 32, reverse_coord=reverse, interleave_sin_cos=interleave
            )
            assert not torch.allclose(t, ref, atol=1e-3)
