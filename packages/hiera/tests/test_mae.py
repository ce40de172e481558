"""MAE pretraining: loss, predictions and gradients equal the official MaskedAutoencoderHiera."""

from __future__ import annotations

import pytest
import torch
from hiera.hiera_mae import MaskedAutoencoderHiera

from paperzoo.core import create_method
from paperzoo.hiera.convert import convert_official_mae_state_dict
from paperzoo.hiera.method import hiera_mae

# Narrow official configurations (same code paths as the released sizes, fewer blocks).
SMALL = dict(embed_dim=24, num_heads=1, stages=(1, 1, 2, 1), q_pool=2)
VIDEO = dict(
    input_size=(8, 64, 64), q_stride=(1, 2, 2), mask_unit_size=(1, 8, 8), patch_kernel=(3, 7, 7),
    patch_stride=(2, 4, 4), patch_padding=(1, 3, 3), sep_pos_embed=True,
)  # fmt: skip
DECODER = dict(decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=2)


def _pair(video: bool):
    torch.manual_seed(0)
    if video:
        ref = MaskedAutoencoderHiera(**SMALL, **VIDEO, **DECODER)
        ours = hiera_mae("hiera_base_16x224", input_size=(8, 64, 64), **SMALL, **DECODER)
        x = torch.randn(2, 3, 8, 64, 64)
    else:
        ref = MaskedAutoencoderHiera(input_size=(64, 64), **SMALL, **DECODER)
        ours = hiera_mae("hiera_tiny_224", input_size=(64, 64), **SMALL, **DECODER)
        x = torch.randn(2, 3, 64, 64)
    ours.load_state_dict(convert_official_mae_state_dict({"model_state": ref.state_dict()}))
    return ref, ours, x


@pytest.mark.parametrize("video", [False, True])
def test_loss_and_gradients_match_official(video):
    ref, ours, x = _pair(video)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    mask = ref.get_random_mask(x, 0.9 if video else 0.6)  # same mask given to both
    loss_ref, pred_ref, label_ref, _ = ref(x, mask=mask)
    loss, pred, label, mask_out = ours(x, mask=mask)
    assert torch.equal(mask_out, mask)
    print("video" if video else "image", "MAE loss", loss.item(), loss_ref.item(),
          (pred - pred_ref).abs().max().item())  # fmt: skip
    torch.testing.assert_close(label, label_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(pred, pred_ref, rtol=0, atol=1e-5)
    assert abs(loss.item() - loss_ref.item()) < 1e-5
    loss_ref.backward()
    loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        key = "encoder_norm." + name[len("encoder.norm."):] if name.startswith("encoder.norm.") \
            else name.removeprefix("encoder.")  # fmt: skip
        torch.testing.assert_close(p.grad, ref_grads[key].grad, rtol=1e-4, atol=1e-6, msg=name)


def test_official_release_configs_build():
    # The released mae_hiera_* use q_pool=2, decoder 512 x 8 blocks x 16 heads.
    with torch.device("meta"):
        mae = hiera_mae("hiera_base_224")
    assert mae.encoder.q_pool == 2 and len(mae.decoder_blocks) == 8
    assert mae.mask_ratio == 0.6 and mae.pred_stride == 16
    assert mae.decoder_pred.out_features == 16 * 16 * 3
    with torch.device("meta"):
        assert hiera_mae("hiera_base_16x224").mask_ratio == 0.9


def test_training_step_and_registry():
    mae = create_method("hiera_mae", model="hiera_toy_8x64", **DECODER)
    x = torch.randn(2, 3, 8, 64, 64)
    out = mae.training_step((x, torch.zeros(2, dtype=torch.long)), step=0)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and mae.decoder_pred.weight.grad is not None
    # The encoder sees 10% of the 64 mask units.
    assert mae.encoder.get_random_mask(x, mae.mask_ratio).sum(1).tolist() == [6, 6]
    state = mae.encoder_state_dict()
    assert not any(k.startswith(("norm.", "head.")) for k in state)
    assert "blocks.0.attn.qkv.weight" in state


def test_bad_configs_are_explained():
    with pytest.raises(ValueError, match="mask_unit_size == q_stride"):
        hiera_mae("hiera_tiny_224", input_size=(64, 64), mask_unit_size=(4, 4), **SMALL)
    with pytest.raises(ValueError, match="did you mean 'hiera_base_224'"):
        hiera_mae("hiera_bse_224")


def test_finetune_layer_decay_groups_cover_every_parameter_once():
    method = create_method("hiera_finetune", model="hiera_toy_8x64", layer_decay=0.5)
    groups = method.param_groups()
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in method.model.parameters())
    depth = len(method.model.blocks)
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    wd = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    m = method.model
    assert scale[id(m.patch_embed.proj.weight)] == 0.5 ** (depth + 1)
    assert scale[id(m.blocks[0].attn.qkv.weight)] == 0.5**depth
    assert scale[id(m.head.projection.weight)] == 1.0
    assert wd[id(m.blocks[0].attn.qkv.weight)] == 0.05
    assert wd[id(m.blocks[0].attn.qkv.bias)] == 0.0
    assert wd[id(m.pos_embed_spatial)] == 0.0
    x, y = torch.randn(2, 3, 8, 64, 64), torch.tensor([1, 2])
    out = method.training_step((x, y), step=0)
    assert set(out) == {"loss", "acc"} and torch.isfinite(out["loss"])
