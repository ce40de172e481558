"""The Stable Diffusion VAE (sd-vae-ft-mse) as a diffusers ``AutoencoderKL``, with a local loader.

The autoencoder is the KL-f8 one of Rombach et al., "High-Resolution Image Synthesis with Latent
Diffusion Models" (arXiv 2112.10752; code: CompVis/latent-diffusion). ``sd-vae-ft-mse`` is Stability
AI's decoder fine-tune of it (hub: stabilityai/sd-vae-ft-mse), the VAE that DiT (arXiv 2212.09748),
SiT (arXiv 2401.08740), Adversarial Flow Models (arXiv 2511.22475) and CAFM encode ImageNet with.

Three local layouts load through :func:`sd_vae`:

- the diffusers layout (``encoder.down_blocks.0.resnets.0...``, ``...attentions.0.to_q``);
- the same with the attention names diffusers used before 0.14 (``...attentions.0.query/key/value/
  proj_attn``), which the hub's own ``diffusion_pytorch_model.bin`` and the official advflow release
  use;
- the original CompVis/ldm layout (``encoder.down.0.block.0...``, ``encoder.mid.attn_1.q`` as 1x1
  convolutions, optionally under ``state_dict`` and a ``first_stage_model.``/``vae.`` prefix),
  through diffusers' own converter ``convert_ldm_vae_checkpoint`` (offline: it only needs the config).
  ``AutoencoderKL.from_single_file(path, config=local_dir)`` runs the same converter and also works
  offline (checked with diffusers 0.42), but wants the config as a directory on disk; calling the
  converter keeps one load path, with one key check, for all three layouts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

__all__ = [
    "SD_VAE_FT_MSE_CONFIG",
    "SD_VAE_TEST_CONFIG",
    "decode",
    "decode_batched",
    "encode",
    "load_vae_state_dict",
    "recipe_vae",
    "sd_vae",
]

# stabilityai/sd-vae-ft-mse config.json (written from the hub file; nothing is downloaded here).
# The hub file predates ``scaling_factor`` (diffusers 0.4.2); 0.18215 is diffusers' default for it
# and the constant DiT, SiT and advflow multiply latents by.
SD_VAE_FT_MSE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 256,
    "scaling_factor": 0.18215,
}

# For pipeline tests of the ImageNet recipes: the sd-vae-ft-mse architecture at 2 levels (one 2x
# downsampling, 16 px images to 8 x 8 latents) and widths 16 / 32. Not a model anyone trains.
SD_VAE_TEST_CONFIG: dict[str, Any] = {
    **SD_VAE_FT_MSE_CONFIG,
    "down_block_types": ("DownEncoderBlock2D",) * 2,
    "up_block_types": ("UpDecoderBlock2D",) * 2,
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 16,
}

# Old diffusers (< 0.14) attention names -> current ones. diffusers does this rename itself only in
# the private ``ModelMixin._fix_state_dict_keys_on_load`` (from_pretrained's path), so the four
# names are mapped here.
_DEPRECATED_ATTENTION_NAMES = {
    "query": "to_q",
    "key": "to_k",
    "value": "to_v",
    "proj_attn": "to_out.0",
}


def sd_vae(
    checkpoint_path: str | os.PathLike[str] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
) -> AutoencoderKL:
    """Build the sd-vae-ft-mse ``AutoencoderKL`` and load a local file if given (else random init).

    ``checkpoint_path``: ``.safetensors``, ``.bin``, ``.pt``, ``.pth`` or ``.ckpt`` in any layout of
    the module docstring. ``config``: ``AutoencoderKL`` arguments, default
    :data:`SD_VAE_FT_MSE_CONFIG`. Returns the float32 model on the CPU in eval mode.
    """
    kwargs = dict(config or SD_VAE_FT_MSE_CONFIG)
    if checkpoint_path is None:
        return AutoencoderKL(**kwargs).eval()
    state_dict = _read_state_dict(Path(checkpoint_path))
    # Built on the meta device: the 84M-parameter random init would be overwritten anyway, and
    # every parameter is then assigned from the file (a key it lacks is an error below).
    with torch.device("meta"):
        vae = AutoencoderKL(**kwargs)
    load_vae_state_dict(vae, state_dict, assign=True)
    return vae.eval()


def recipe_vae(
    path: str, *, test_config: bool = False, scaling_factor: float = 0.18215
) -> AutoencoderKL:
    """The VAE of a latent recipe: sd-vae-ft-mse from the local file ``path``, or with
    ``test_config`` the seeded random :data:`SD_VAE_TEST_CONFIG` of the pipeline tests. An empty
    ``path`` is an error that says what to pass: nothing is downloaded."""
    if test_config:
        torch.manual_seed(0)
        return sd_vae(config={**SD_VAE_TEST_CONFIG, "scaling_factor": scaling_factor})
    if not path:
        raise FileNotFoundError(
            "this latent recipe needs the sd-vae-ft-mse weights: --set vae.path=PATH (the "
            "official sd-vae-ft-mse .pth/.safetensors or a diffusers state dict); nothing is "
            "downloaded"
        )
    return sd_vae(path)


def load_vae_state_dict(
    vae: AutoencoderKL, state_dict: Mapping[str, torch.Tensor], *, assign: bool = False
) -> None:
    """Load a state dict in any supported layout into ``vae``; errors name missing/unexpected keys.

    Tensors are cast to the model's dtype (float16 files load into a float32 model).
    ``assign=True`` replaces the parameters (for a model built on the meta device).
    """
    converted = _to_diffusers_layout(dict(state_dict), vae)
    expected = vae.state_dict()
    converted = {
        key: value.to(expected[key].dtype) if key in expected else value
        for key, value in converted.items()
    }
    result = vae.load_state_dict(converted, strict=False, assign=assign)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(
            "VAE checkpoint does not match the AutoencoderKL config: "
            f"missing {sorted(result.missing_keys)}, unexpected {sorted(result.unexpected_keys)}"
        )


@torch.no_grad()
def encode(
    vae: AutoencoderKL,
    images: torch.Tensor,
    *,
    sample: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, 3, H, W) float in [-1, 1] -> scaled latents (B, 4, H/8, W/8), ``z * scaling_factor``.

    ``sample=True`` draws from the posterior as DiT's training does; ``False`` takes its mean.
    """
    posterior = vae.encode(images.to(vae.dtype)).latent_dist
    z = posterior.sample(generator=generator) if sample else posterior.mode()
    return z * vae.config.scaling_factor


@torch.no_grad()
def decode(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """Scaled latents (B, 4, h, w) -> images (B, 3, 8h, 8w) float in [-1, 1] (clamped)."""
    images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
    return images.clamp(-1, 1)


def decode_batched(
    vae: AutoencoderKL,
    latents: torch.Tensor,
    batch_size: int,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """:func:`decode` in chunks of ``batch_size`` on ``device`` (default: the latents'), images
    returned where the latents were."""
    device = torch.device(device) if device is not None else latents.device
    vae = vae.to(device)
    return torch.cat(
        [decode(vae, z.to(device)).to(latents.device) for z in latents.split(batch_size)]
    )


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"VAE checkpoint {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]  # CompVis/ldm training checkpoints nest the weights
    if not isinstance(loaded, Mapping):
        raise TypeError(f"{str(path)!r} holds a {type(loaded).__name__}, not a state dict")
    return dict(loaded)


def _is_ldm_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(".mid.attn_1." in key or ".down.0.block." in key for key in state_dict)


def _to_diffusers_layout(
    state_dict: dict[str, torch.Tensor], vae: AutoencoderKL
) -> dict[str, torch.Tensor]:
    if _is_ldm_layout(state_dict):
        # diffusers' converter keeps only the keys it maps, so leftovers (the ldm training loss's
        # LPIPS/discriminator weights) drop out; anything it could not map shows up as missing.
        return convert_ldm_vae_checkpoint(state_dict, dict(vae.config))
    expected = vae.state_dict()
    converted = {}
    for key, value in state_dict.items():
        prefix, _, name = key.rpartition(".")
        stem, _, old = prefix.rpartition(".")
        if ".attentions." in key and old in _DEPRECATED_ATTENTION_NAMES:
            key = f"{stem}.{_DEPRECATED_ATTENTION_NAMES[old]}.{name}"
        target = expected.get(key)
        if target is not None and value.ndim > 2 and value.shape[:2] == target.shape:
            value = value.reshape(target.shape)  # ldm-converted files may keep the 1x1-conv shape
        converted[key] = value
    return converted
