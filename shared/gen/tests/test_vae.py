"""sd_vae: the config, and local files in the diffusers, old-diffusers and CompVis/ldm layouts."""

from __future__ import annotations

import re

import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

from paperzoo.gen.vae import SD_VAE_FT_MSE_CONFIG, decode, encode, recipe_vae, sd_vae

SMALL = {
    **SD_VAE_FT_MSE_CONFIG,
    "down_block_types": ("DownEncoderBlock2D",) * 2,
    "up_block_types": ("UpDecoderBlock2D",) * 2,
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 32,
}


@pytest.fixture(scope="module")
def reference() -> AutoencoderKL:
    torch.manual_seed(0)
    vae = AutoencoderKL(**SMALL).eval()
    with torch.no_grad():  # the default init leaves some zeros; make every weight matter
        for p in vae.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return vae


def _old_attention_names(state_dict, *, conv_shaped: bool):
    """The pre-0.14 diffusers names (as in the hub's .bin and the advflow release)."""
    new_to_old = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    out = {}
    for key, value in state_dict.items():
        for new, old in new_to_old.items():
            if f".attentions.0.{new}." in key:
                key = key.replace(f".attentions.0.{new}.", f".attentions.0.{old}.")
                if conv_shaped and value.ndim == 2:
                    value = value[:, :, None, None]
        out[key] = value
    return out


def _ldm_layout(state_dict, num_blocks: int):
    """The CompVis/ldm names (``encoder.down.0.block.0``, 1x1-conv attention), as its training writes."""
    rules = [
        (r"^(encoder)\.down_blocks\.(\d+)\.resnets\.", r"\1.down.\2.block."),
        (r"^(encoder)\.down_blocks\.(\d+)\.downsamplers\.0\.", r"\1.down.\2.downsample."),
        (r"\.mid_block\.resnets\.0\.", ".mid.block_1."),
        (r"\.mid_block\.resnets\.1\.", ".mid.block_2."),
        (r"\.mid_block\.attentions\.0\.group_norm\.", ".mid.attn_1.norm."),
        (r"\.mid_block\.attentions\.0\.to_([qkv])\.", r".mid.attn_1.\1."),
        (r"\.mid_block\.attentions\.0\.to_out\.0\.", ".mid.attn_1.proj_out."),
        (r"\.conv_norm_out\.", ".norm_out."),
        (r"\.conv_shortcut\.", ".nin_shortcut."),
    ]
    out = {}
    for key, value in state_dict.items():
        up = re.match(r"^decoder\.up_blocks\.(\d+)\.(resnets|upsamplers\.0)\.(.*)$", key)
        if up:
            block = num_blocks - 1 - int(up.group(1))
            part = "block" if up.group(2) == "resnets" else "upsample"
            key = f"decoder.up.{block}.{part}.{up.group(3)}"
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key)
        if ".attn_1." in key and value.ndim == 2:
            value = value[:, :, None, None]
        out[f"first_stage_model.{key}"] = value
    out["loss.logvar"] = torch.zeros(())  # ldm checkpoints carry the training loss too
    return {"state_dict": out, "global_step": 1}


def _same(a: AutoencoderKL, b: AutoencoderKL) -> None:
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    za, zb = encode(a, x, sample=False), encode(b, x, sample=False)
    torch.testing.assert_close(za, zb, rtol=0, atol=0)
    torch.testing.assert_close(decode(a, za), decode(b, zb), rtol=0, atol=0)


def test_config_is_sd_vae_ft_mse():
    vae = AutoencoderKL(**SD_VAE_FT_MSE_CONFIG)
    # 83,653,863 parameters: the published size of the SD KL-f8 autoencoder.
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863
    assert vae.config.scaling_factor == 0.18215
    assert vae.encoder.mid_block.attentions[0].to_q.weight.shape == (512, 512)


@pytest.mark.parametrize(
    ("layout", "suffix"),
    [
        ("diffusers", ".safetensors"),
        ("old-attention", ".pth"),
        ("old-attention-conv", ".bin"),
        ("ldm", ".ckpt"),
    ],
)
def test_layouts_load_to_the_same_model(reference, tmp_path, layout, suffix):
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    if layout.startswith("old-attention"):
        state = _old_attention_names(state, conv_shaped=layout.endswith("conv"))
        assert "encoder.mid_block.attentions.0.proj_attn.weight" in state
    elif layout == "ldm":
        state = _ldm_layout(state, num_blocks=len(SMALL["block_out_channels"]))
    path = tmp_path / f"vae{suffix}"
    if suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save(state, path)
    loaded = sd_vae(path, config=SMALL)
    assert not loaded.training
    _same(reference, loaded)


def test_mismatched_keys_are_named(reference, tmp_path):
    state = dict(reference.state_dict())
    state.pop("decoder.conv_out.bias")
    state["encoder.extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(KeyError, match=r"decoder\.conv_out\.bias.*encoder\.extra\.weight"):
        sd_vae(path, config=SMALL)
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        sd_vae(tmp_path / "missing.pth", config=SMALL)


def test_encode_scales_and_decode_inverts_shapes(reference):
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    mean = reference.encode(x).latent_dist.mean
    torch.testing.assert_close(encode(reference, x, sample=False), mean * 0.18215)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(
        encode(reference, x, generator=g1), encode(reference, x, generator=g2)
    )
    assert not torch.equal(encode(reference, x), encode(reference, x))
    out = decode(reference, encode(reference, x, sample=False))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1


def test_recipe_vae_needs_a_path_or_the_test_config():
    with pytest.raises(FileNotFoundError, match=re.escape("--set vae.path=PATH")):
        recipe_vae("")
    a = recipe_vae("", test_config=True, scaling_factor=0.5)
    b = recipe_vae("", test_config=True, scaling_factor=0.5)
    assert a.config.scaling_factor == 0.5 and a.config.block_out_channels == (16, 32)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
