"""Checkpoint conversion: formats, MAE files into classifiers, and clear errors."""

from __future__ import annotations

import pytest
import torch
from hiera.hiera_mae import MaskedAutoencoderHiera

from paperzoo.core import create_model
from paperzoo.hiera.convert import (
    convert_timm_state_dict,
    detect_format,
    load_checkpoint,
)
from paperzoo.hiera.model import hiera_tiny_224

SMALL = dict(input_size=(64, 64), embed_dim=16, stages=(1, 1, 2, 1))


def test_timm_keys_map_to_official_names():
    out = convert_timm_state_dict(
        {
            "head.fc.weight": torch.ones(1),
            "head.norm.bias": torch.ones(1),
            "pos_embed": torch.ones(1),
        }
    )
    assert set(out) == {"head.projection.weight", "norm.bias", "pos_embed"}
    with pytest.raises(ValueError, match="abswin"):
        convert_timm_state_dict({"pos_embed_win": torch.ones(1)})


def test_official_mae_checkpoint_fills_the_encoder_only(tmp_path):
    torch.manual_seed(0)
    mae = MaskedAutoencoderHiera(q_pool=2, num_heads=1, **SMALL)
    path = tmp_path / "mae_hiera.pth"
    torch.save({"model_state": mae.state_dict()}, path)
    assert detect_format(torch.load(path, weights_only=True)) == "official_mae"
    model = hiera_tiny_224(**SMALL, num_classes=10)
    norm_before = model.norm.bias.clone()
    with pytest.warns(UserWarning, match="MAE"):
        load_checkpoint(model, path)
    torch.testing.assert_close(model.blocks[2].attn.qkv.weight, mae.blocks[2].attn.qkv.weight)
    torch.testing.assert_close(model.norm.bias, norm_before)  # left at init, as officially


def test_our_own_saved_weights_round_trip(tmp_path):
    from safetensors.torch import save_file

    model = create_model("hiera_tiny_224", **SMALL, num_classes=3)
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(path))
    again = create_model("hiera_tiny_224", checkpoint_path=path, **SMALL, num_classes=3)
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k


def test_errors_name_the_fix(tmp_path):
    model = hiera_tiny_224(**SMALL, num_classes=3)
    path = tmp_path / "ckpt.pth"
    torch.save({"model_state": model.state_dict()}, path)
    with pytest.raises(ValueError, match="num_classes=3"):
        load_checkpoint(hiera_tiny_224(**SMALL, num_classes=5), path)
    with pytest.raises(ValueError, match="different Hiera size or input size"):
        load_checkpoint(hiera_tiny_224(**{**SMALL, "input_size": (128, 128)}, num_classes=3), path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(model, tmp_path / "missing.pth")
    torch.save({"model_state": {"fc.weight": torch.ones(2)}}, path)
    with pytest.raises(ValueError, match="not a Hiera checkpoint"):
        load_checkpoint(model, path)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="weights_only"):
        load_checkpoint(model, tmp_path / "bad.pth")
