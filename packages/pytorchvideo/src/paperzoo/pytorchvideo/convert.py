"""PyTorchVideo checkpoints -> paperzoo state dicts for X3D and efficient X3D.

The official PyTorchVideo model-zoo files (``X3D_XS.pyth`` ...) are ``torch.save``'d dicts
holding the weights under ``"model_state"``; the Accelerator's ``efficient_x3d_*`` files are
plain state dicts. Both are read with ``torch.load(weights_only=True)`` (no unpickling of
code), their keys are renamed by the tables below, and the result is loaded strictly: a
checkpoint of another architecture or size fails with the list of keys that differ.

Key layouts (PyTorchVideo -> ours)::

    X3D            blocks.0.conv.conv_t          -> stem.conv_xy   (the 1x3x3 spatial conv; PyTorchVideo
                   blocks.0.conv.conv_xy         -> stem.conv_t     names them the other way round)
                   blocks.0.norm                 -> stem.norm
                   blocks.{s}.res_blocks.{j}.branch1_conv/_norm  -> stages.{s-1}.{j}.shortcut_conv/_norm
                   ...branch2.conv_a|norm_a|conv_b|conv_c|norm_c -> stages.{s-1}.{j}.<same>
                   ...branch2.norm_b.0           -> stages.{s-1}.{j}.norm_b
                   ...branch2.norm_b.1.block.0|2 -> stages.{s-1}.{j}.se.reduce|expand
                   blocks.5.pool.<x>, blocks.5.proj -> head.<x>, head.proj
    Efficient X3D  s1.pathway0_stem_conv_xy.kernel.conv -> stem.conv_xy.conv
                   s1.pathway0_stem_conv.kernel.*       -> stem.conv_t.*
                   s{k}.pathway0_res{j}._res_proj.kernel.* -> stages.{k-2}.{j}.shortcut.*
                   s{k}.pathway0_res{j}.layers.conv_0|1|2.kernel.* -> stages.{k-2}.{j}.conv_a|b|c.*
                   s{k}.pathway0_res{j}.layers.se.se.block.0|2 -> stages.{k-2}.{j}.se.reduce|expand
                   head.conv_5|lin_5.kernel.*, projection.model -> head.conv_5|lin_5.*, head.proj
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from paperzoo.core.checkpoint import (
    CheckpointMismatchError,
    describe_keys,
    load_state_dict_strict,
    read_state_dict,
    unwrap_state_dict,
)

__all__ = [
    "convert_efficient_x3d_state_dict",
    "convert_x3d_state_dict",
    "load_pytorchvideo_checkpoint",
]

_X3D_RULES: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
    (r"^blocks\.0\.conv\.conv_t\.", "stem.conv_xy."),
    (r"^blocks\.0\.conv\.conv_xy\.", "stem.conv_t."),
    (r"^blocks\.0\.norm\.", "stem.norm."),
    (
        r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch1_(conv|norm)\.",
        lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.shortcut_{m[3]}.",
    ),
    (
        r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.norm_b\.0\.",
        lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.norm_b.",
    ),
    (
        r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.norm_b\.1\.block\.([02])\.",
        lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.se.{'reduce' if m[3] == '0' else 'expand'}.",
    ),
    (
        r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.(conv_[abc]|norm_[ac])\.",
        lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.{m[3]}.",
    ),
    (r"^blocks\.5\.pool\.(pre_conv|pre_norm|post_conv|post_norm)\.", r"head.\1."),
    (r"^blocks\.5\.proj\.", "head.proj."),
]

_EFFICIENT_RULES: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
    (r"^s1\.pathway0_stem_conv_xy\.kernel\.", "stem.conv_xy."),
    (r"^s1\.pathway0_stem_conv\.kernel\.", "stem.conv_t."),
    (
        r"^s([2-5])\.pathway0_res(\d+)\._res_proj\.kernel\.",
        lambda m: f"stages.{int(m[1]) - 2}.{m[2]}.shortcut.",
    ),
    (
        r"^s([2-5])\.pathway0_res(\d+)\.layers\.conv_([012])\.kernel\.",
        lambda m: f"stages.{int(m[1]) - 2}.{m[2]}.conv_{'abc'[int(m[3])]}.",
    ),
    (
        r"^s([2-5])\.pathway0_res(\d+)\.layers\.se\.se\.block\.([02])\.",
        lambda m: f"stages.{int(m[1]) - 2}.{m[2]}.se.{'reduce' if m[3] == '0' else 'expand'}.",
    ),
    (r"^head\.(conv_5|lin_5)\.kernel\.", r"head.\1."),
    (r"^projection\.model\.", "head.proj."),
]


def _rename(
    state: Mapping[str, Any],
    rules: list[tuple[str, str | Callable[[re.Match[str]], str]]],
    layout: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in state.items():
        for pattern, repl in rules:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointMismatchError(
            f"keys not in the PyTorchVideo {layout} layout: {describe_keys(unknown, 8)}"
        )
    return out


def convert_x3d_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """PyTorchVideo ``create_x3d`` / hub ``x3d_*`` state dict -> :class:`~paperzoo.pytorchvideo.x3d.X3D` keys."""
    return _rename(state, _X3D_RULES, "X3D")


def convert_efficient_x3d_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """Accelerator ``EfficientX3d`` (original form) state dict -> :class:`EfficientX3D` keys."""
    return _rename(state, _EFFICIENT_RULES, "efficient X3D")


def _detect_and_convert(model: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
    from paperzoo.pytorchvideo.efficient_x3d import EfficientX3D
    from paperzoo.pytorchvideo.x3d import X3D

    own = set(model.state_dict())
    if set(state) == own:  # already a paperzoo state dict
        return state
    if isinstance(model, X3D):
        if any(k.startswith("s1.pathway0_") for k in state):
            raise CheckpointMismatchError(
                "this is an efficient (Accelerator) X3D checkpoint; load it into "
                "efficient_x3d_xs / efficient_x3d_s instead"
            )
        return convert_x3d_state_dict(state)
    if isinstance(model, EfficientX3D):
        if any(k.startswith("blocks.0.") for k in state):
            raise CheckpointMismatchError(
                "this is a PyTorchVideo X3D checkpoint (create_x3d); load it into x3d_xs/s/m/l instead"
            )
        return convert_efficient_x3d_state_dict(state)
    raise TypeError(f"expected an X3D or EfficientX3D model, got {type(model).__name__}")


def load_pytorchvideo_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a PyTorchVideo checkpoint file into ``model`` (strictly) and return it.

    Accepts the model-zoo ``.pyth`` layout (``{"model_state": ...}``), a plain PyTorchVideo
    state dict, or a paperzoo state dict (``.safetensors`` or torch). This is the
    ``checkpoint_loader`` of the X3D model specs, so ``create_model("x3d_xs",
    checkpoint_path=P)`` goes through it.
    """
    state = unwrap_state_dict(read_state_dict(path))
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    try:
        converted = _detect_and_convert(model, state)
    except CheckpointMismatchError as exc:
        raise CheckpointMismatchError(f"{path}: {exc}") from None
    load_state_dict_strict(model, converted, source=str(path))
    return model
