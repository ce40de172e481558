"""Checkpoints: no Castling-ViT weights were released; what loads instead.

The official release (GATECH-EIC/Castling-ViT) holds only ``attention.py``. Its
``LinAngularAttention`` state dict (``qkv.weight``, ``qkv.bias``?, ``proj.weight``,
``proj.bias``, ``dconv.weight``; its ``MatMul`` helpers hold no parameters) has exactly the names
and shapes of :class:`paperzoo.kernels.LinearAngularAttention`, so it loads unchanged (tested
against the official module). A whole model trained with that block inside a timm/DeiT
``VisionTransformer`` has timm's names (``blocks.{i}.attn.qkv`` ...), ours; DeiT's training
code (facebookresearch/deit ``main.py``) saves ``{"model": state_dict, "optimizer": ...}``, and
DDP-wrapped saves prefix ``module.``. :func:`load_checkpoint` reads those layouts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from paperzoo.core.checkpoint import load_state_dict_strict

__all__ = ["convert_state_dict", "load_checkpoint", "read_state_dict"]


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a ``torch.save`` file (weights only)."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    state: Any = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "model_state"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    return dict(state)


def convert_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip DDP's ``module.`` prefix; every other name is already ours (see module docstring)."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load ``path`` (any layout above) into ``model`` strictly; returns ``model``."""
    load_state_dict_strict(model, convert_state_dict(read_state_dict(path)))
    return model
