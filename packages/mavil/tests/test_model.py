"""Architecture: parameter counts against timm's ViT-B (built offline, no weights), token
counts of the paper's inputs, the registered counts, and the classifier's three modes."""

from __future__ import annotations

import pytest
import timm
import torch

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


def test_rectangular_positions_match_mae_formula_on_square_grids():
    from paperzoo.diffmae.model import sincos_pos_embed

    # On a square grid our function hands over to diffmae's (MAE's); the rectangular branch
    # must give the same numbers as MAE's formula there too.
    square = sincos_pos_embed(32, (4, 4), cls_token=False)
    emb = M.grid_sincos_pos_embed(32, (4, 8))
    assert emb.shape == (1, 32, 32)
    # Row r, column c of the (4, 8) grid: the first half encodes the row, the second the column.
    assert torch.allclose(emb[0, 8 * 2 + 3, :16], square[0, 4 * 2 + 3, :16], atol=1e-6)
    assert torch.allclose(emb[0, 8 * 2 + 3, 16:], square[0, 4 * 2 + 3, 16:], atol=1e-6)
