"""Official checkpoints -> CAFM's generator and discriminator.

Paper: "Continuous Adversarial Flow Models", arXiv 2604.11521; official code
github.com/ByteDance-Seed/Adversarial-Flow-Models (``train_continuous_adversarial_flow_imagenet.py``
``configure_gen_model`` / ``configure_dis_model``; ``configs/generate/cafm/README.md``: "the
checkpoint format is the same as the official SiT checkpoint format").

- SiT (github.com/willisma/SiT): the released ``SiT-XL-2-256x256.pt`` is a plain (EMA) state
  dict in DiT key names; ``train.py`` checkpoints are ``{"model", "ema", "opt", "args"}`` with
  ``args`` an ``argparse.Namespace`` (the EMA weights are taken). CAFM's own generator / EMA
  checkpoints are plain SiT state dicts too. The unwrapping and shape checks are
  :func:`paperzoo.gen.convert.load_official_state_dict`.
- JiT (github.com/LTH14/JiT): its training checkpoints ``checkpoint-last.pth`` are
  ``{"model", "model_ema1", "model_ema2", "optimizer", "epoch", "args"}`` with every key under
  ``net.`` (JiT's ``Denoiser`` wraps the network); CAFM trains from ``model_ema1`` with the prefix
  stripped (``misc/convert_from_jit_format.py``), and ``misc/convert_to_jit_format.py`` writes
  ``{"model", "model_ema1", "model_ema2"}`` back. Both layouts, and the plain state dict between
  them, load here (``model_ema1`` is taken).
- The discriminator starts from the same generator file (``dis.checkpoint``, ``strict: False``):
  every backbone weight is copied, ``final_layer.*`` of the generator is dropped, the new head
  (SiT: ``dis_embed``, ``final_layer.1.weight``; JiT: ``proj_out.1.{weight,bias}``) keeps its fresh
  initialisation.

Files are read without unpickling code: safetensors, or ``torch.load(weights_only=True)`` with
``argparse.Namespace`` (a plain attribute bag) allowed as the one extra class.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.gen.convert import load_official_state_dict, read_official_state_dict

__all__ = [
    "discriminator_state_from_generator",
    "init_discriminator",
    "load_checkpoint",
    "read_checkpoint",
]

# The discriminators' own parameters, absent from a generator checkpoint (SiT, JiT).
_DISCRIMINATOR_NEW = ("dis_embed", "final_layer.1.weight", "proj_out.1.weight", "proj_out.1.bias")
_GENERATOR_HEAD = "final_layer.linear.weight"


def _is_discriminator(model: nn.Module) -> bool:
    from paperzoo.cafm.jit import JiTDiscriminator
    from paperzoo.cafm.model import CAFMDiscriminator

    return isinstance(model, (CAFMDiscriminator, JiTDiscriminator))


def read_checkpoint(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """The object in ``path``: a safetensors dict, or a ``weights_only`` torch pickle (with
    ``argparse.Namespace`` allowed, for SiT's ``args``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location="cpu", weights_only=True)


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a SiT-layout file (released, ``train.py`` or CAFM's own) or a JiT-layout file (JiT's
    training checkpoint, or the plain state dict CAFM converts it to) into the matching generator
    or discriminator, strictly. A generator file given to a discriminator initialises it as
    :func:`init_discriminator` does (the official ``dis.checkpoint`` with ``strict: False``).
    Errors name the key, both shapes and the constructor argument to change."""
    raw = read_checkpoint(path)
    if _is_discriminator(model) and _GENERATOR_HEAD in read_official_state_dict(raw):
        return init_discriminator(model, raw)
    return load_official_state_dict(model, raw)


def discriminator_state_from_generator(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A generator's (SiT) state dict minus its output head: the discriminator's backbone."""
    return {k: v for k, v in state.items() if not k.startswith("final_layer.")}


def init_discriminator(
    discriminator: nn.Module, generator: nn.Module | Mapping[str, Any]
) -> nn.Module:
    """Copy the backbone of ``generator`` (a module, or a checkpoint in any SiT layout) into
    ``discriminator`` (in place, returned); only the discriminator's head (SiT: ``dis_embed``,
    ``final_layer.1.weight``; JiT: ``proj_out.1.*``) stays as initialised. Shapes are checked by :func:`paperzoo.gen.convert.load_official_state_dict`."""
    state = (
        generator.state_dict()
        if isinstance(generator, nn.Module)
        else read_official_state_dict(generator)
    )
    backbone = {k: v.detach().clone() for k, v in discriminator_state_from_generator(state).items()}
    own = discriminator.state_dict()
    missing = sorted(set(own) - set(backbone) - set(_DISCRIMINATOR_NEW))
    unexpected = sorted(set(backbone) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"the generator's backbone does not fit the discriminator: missing {missing[:10]}, "
            f"unexpected {unexpected[:10]}"
        )
    return load_official_state_dict(discriminator, backbone, strict=False)
