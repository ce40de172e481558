"""paperzoo.gen: the latent generative modelling core shared by the generative papers.

The names below are imported on first use, so ``import paperzoo.gen`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # dit.py: DiT / SiT backbones in the official key names
    "DIT_SIZES": "paperzoo.gen.dit",
    "DiT": "paperzoo.gen.dit",
    "DiTDiscriminator": "paperzoo.gen.dit",
    "dit_kwargs": "paperzoo.gen.dit",
    # convert.py: official checkpoint layouts, diffusers export
    "dit_to_diffusers": "paperzoo.gen.convert",
    "load_official_state_dict": "paperzoo.gen.convert",
    "read_official_state_dict": "paperzoo.gen.convert",
    # flow.py: flow matching and ODE sampling
    "FlowMatching": "paperzoo.gen.flow",
    "SiTVelocity": "paperzoo.gen.flow",
    "cfg_velocity": "paperzoo.gen.flow",
    "interpolate": "paperzoo.gen.flow",
    "sample_ode": "paperzoo.gen.flow",
    "velocity_target": "paperzoo.gen.flow",
    # vae.py: the sd-vae-ft-mse AutoencoderKL and its local loader
    "SD_VAE_FT_MSE_CONFIG": "paperzoo.gen.vae",
    "sd_vae": "paperzoo.gen.vae",
    "load_vae_state_dict": "paperzoo.gen.vae",
    "recipe_vae": "paperzoo.gen.vae",
    "SD_VAE_TEST_CONFIG": "paperzoo.gen.vae",
    "encode": "paperzoo.gen.vae",
    "decode": "paperzoo.gen.vae",
    "decode_batched": "paperzoo.gen.vae",
    # latents.py: latent pre-extraction to safetensors shards
    "LatentDataset": "paperzoo.gen.latents",
    "extract_latents": "paperzoo.gen.latents",
    "imagenet_center_crop": "paperzoo.gen.latents",
    "imagenet_transform": "paperzoo.gen.latents",
    # grid.py, sample.py: PNG grids and `paperzoo sample`
    "save_grid": "paperzoo.gen.grid",
    "ClassConditionalSampler": "paperzoo.gen.sample",
    "SampleError": "paperzoo.gen.sample",
    "sample_grid": "paperzoo.gen.sample",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.gen' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
