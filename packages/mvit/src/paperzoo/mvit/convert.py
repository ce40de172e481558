"""Checkpoint converters: every published MViT / MViTv2 layout -> paperzoo's :class:`MViT`.

paperzoo's parameter names are those of the official code, PySlowFast (``slowfast/models/
video_model_builder.py`` ``MViT`` with ``attention.py``'s ``MultiScaleAttention``): a merged
``attn.qkv`` projection, ``pool_{q,k,v}`` / ``norm_{q,k,v}``, ``rel_pos_{h,w,t}``, ``mlp.fc1/fc2``,
``proj``, ``norm`` and ``head.projection``. Four other layouts are converted by renaming
(and, where they differ, reshaping) tensors; no value is ever changed:

============== =========================================== ======================================
format         where it comes from                         differences from paperzoo
============== =========================================== ======================================
``pyslowfast`` PySlowFast ``.pyth`` (``model_state``), and  older releases have separate
               facebookresearch/mvit image checkpoints       ``attn.q/k/v``; the image repo pools
                                                            with Conv2d (weights without T)
``pytorchvideo`` pytorchvideo hub ``mvit_base_*``           ``patch_embed.patch_model``,
                                                            ``cls_positional_encoding.*``, separate
                                                            q/k/v, ``norm_embed``, ``head.proj``
``torchvision`` ``torchvision.models.video.mvit_v1_b`` /    ``conv_proj``, ``pos_encoding.*`` (no
               ``mvit_v2_s``                                batch dims), ``attn.project.0``,
                                                            ``pool_q.pool`` / ``pool_q.norm_act.0``,
                                                            ``mlp.0/3``, ``project``, ``head.1``
``timm``       ``timm.models.mvitv2`` (``mvitv2_*``)        ``stages.S.blocks.J``,
                                                            ``shortcut_proj_attn/mlp``, 2D pooling
                                                            convs, ``head.fc``
============== =========================================== ======================================

:func:`load_checkpoint` (the ``checkpoint_loader`` of every registered MViT model) reads a file
safely (safetensors or ``torch.load(weights_only=True)``), detects its format, converts it and
loads it strictly, so ``create_model("mvit_base_16x4", checkpoint_path=P)`` accepts any of them.
PySlowFast's head applies a softmax in eval mode; paperzoo's returns logits (same ranking).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from paperzoo.core.checkpoint import load_state_dict_strict, read_state_dict, unwrap_state_dict

__all__ = [
    "FORMATS",
    "convert_pyslowfast",
    "convert_pytorchvideo",
    "convert_state_dict",
    "convert_timm",
    "convert_torchvision",
    "detect_format",
    "load_checkpoint",
    "to_pyslowfast",
]

State = dict[str, torch.Tensor]


def _merge_qkv(state: State) -> State:
    """Concatenate separate ``attn.q/k/v`` projections into one ``attn.qkv`` (q, k, v order,
    the row order of PySlowFast's ``qkv(x).reshape(B, N, 3, heads, -1)``)."""
    out: State = {}
    for key, value in state.items():
        m = re.match(r"(.*\.attn)\.([qkv])\.(weight|bias)$", key)
        if m is None:
            out[key] = value
            continue
        prefix, part, kind = m.groups()
        if part != "q":
            continue
        parts = [state[f"{prefix}.{p}.{kind}"] for p in "qkv"]
        out[f"{prefix}.qkv.{kind}"] = torch.cat(parts, dim=0)
    return out


def _pool_weights_3d(state: State) -> State:
    """Depthwise pooling convs stored 2D (C, 1, kh, kw) -> 3D (C, 1, 1, kh, kw)."""
    pat = re.compile(r".*\.attn\.pool_[qkv]\.weight$")
    return {k: (v.unsqueeze(2) if pat.match(k) and v.ndim == 4 else v) for k, v in state.items()}


def convert_pyslowfast(state: Mapping[str, Any]) -> State:
    """PySlowFast / facebookresearch/mvit checkpoint (optionally wrapped in ``model_state``)."""
    state = unwrap_state_dict(state)
    return _pool_weights_3d(_merge_qkv(dict(state)))


def convert_pytorchvideo(state: Mapping[str, Any]) -> State:
    """pytorchvideo ``create_multiscale_vision_transformers`` state dict (hub ``mvit_base_*``)."""
    state = unwrap_state_dict(state)
    renamed: State = {}
    for key, value in state.items():
        new = key.replace("patch_embed.patch_model.", "patch_embed.proj.")
        new = new.replace("cls_positional_encoding.", "")
        new = re.sub(r"^norm_embed\.", "norm.", new)
        new = re.sub(r"^head\.proj\.", "head.projection.", new)
        renamed[new] = value
    return _merge_qkv(renamed)


def convert_torchvision(state: Mapping[str, Any]) -> State:
    """torchvision ``MViT`` state dict (``mvit_v1_b``, ``mvit_v2_s``)."""
    from paperzoo.kernels.pooling_attention import convert_torchvision_state_dict

    state = convert_torchvision_state_dict(unwrap_state_dict(state))
    out: State = {}
    for key, value in state.items():
        if key.startswith("conv_proj."):
            out["patch_embed.proj." + key.split(".", 1)[1]] = value
        elif key == "pos_encoding.class_token":
            out["cls_token"] = value.reshape(1, 1, -1)
        elif key == "pos_encoding.class_pos":
            out["pos_embed_class"] = value.reshape(1, 1, -1)
        elif key == "pos_encoding.spatial_pos":
            out["pos_embed_spatial"] = value.unsqueeze(0)
        elif key == "pos_encoding.temporal_pos":
            out["pos_embed_temporal"] = value.unsqueeze(0)
        elif key.startswith("head.1."):
            out["head.projection." + key.split(".", 2)[2]] = value
        else:
            new = re.sub(r"(blocks\.\d+)\.mlp\.0\.", r"\1.mlp.fc1.", key)
            new = re.sub(r"(blocks\.\d+)\.mlp\.3\.", r"\1.mlp.fc2.", new)
            new = re.sub(r"(blocks\.\d+)\.project\.", r"\1.proj.", new)
            out[new] = value
    return out


def convert_timm(state: Mapping[str, Any]) -> State:
    """timm ``MultiScaleVit`` state dict (``mvitv2_tiny/small/base``...)."""
    state = unwrap_state_dict(state)
    depths: dict[int, int] = {}
    for key in state:
        m = re.match(r"stages\.(\d+)\.blocks\.(\d+)\.", key)
        if m:
            s, b = int(m.group(1)), int(m.group(2))
            depths[s] = max(depths.get(s, 0), b + 1)
    offsets = {s: sum(depths.get(i, 0) for i in range(s)) for s in depths}
    out: State = {}
    for key, value in state.items():
        m = re.match(r"stages\.(\d+)\.blocks\.(\d+)\.(.*)$", key)
        if m:
            s, b, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            rest = re.sub(r"^shortcut_proj_(attn|mlp)\.", "proj.", rest)
            key = f"blocks.{offsets[s] + b}.{rest}"
        elif key.startswith("head.fc."):
            key = "head.projection." + key.split(".", 2)[2]
        out[key] = value
    return _pool_weights_3d(out)


FORMATS: dict[str, Callable[[Mapping[str, Any]], State]] = {
    "pyslowfast": convert_pyslowfast,
    "pytorchvideo": convert_pytorchvideo,
    "torchvision": convert_torchvision,
    "timm": convert_timm,
}


def detect_format(state: Mapping[str, Any]) -> str:
    """Name the layout of a (possibly wrapped) MViT state dict, from its key names."""
    keys = list(unwrap_state_dict(state))
    if any(k.startswith(("patch_embed.patch_model.", "cls_positional_encoding.")) for k in keys):
        return "pytorchvideo"
    if any(k.startswith(("conv_proj.", "pos_encoding.")) for k in keys):
        return "torchvision"
    if any(k.startswith("stages.") for k in keys):
        return "timm"
    if any(k.startswith("blocks.") for k in keys) and any(
        k.startswith("patch_embed.proj.") for k in keys
    ):
        return "pyslowfast"
    shown = ", ".join(keys[:6])
    raise ValueError(
        f"not an MViT checkpoint layout paperzoo knows (keys start: {shown}); known formats: "
        f"{', '.join(FORMATS)}"
    )


def convert_state_dict(state: Mapping[str, Any], fmt: str = "auto") -> State:
    """Convert ``state`` from ``fmt`` (or the detected format) to paperzoo's names."""
    fmt = detect_format(state) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown MViT checkpoint format {fmt!r}; use one of {', '.join(FORMATS)}")
    return FORMATS[fmt](state)


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str], fmt: str = "auto") -> nn.Module:
    """Load an MViT checkpoint file of any supported layout into ``model`` (strictly)."""
    state = convert_state_dict(read_state_dict(path), fmt)
    load_state_dict_strict(model, state, source=f"{path} ({fmt})")
    return model


def to_pyslowfast(state: Mapping[str, torch.Tensor], *, separate_qkv: bool = False) -> State:
    """paperzoo state dict -> PySlowFast ``model_state`` layout (the same names; optionally the
    separate ``attn.q/k/v`` of older releases). Wrap as ``{"model_state": ...}`` to save."""
    out: State = {}
    for key, value in state.items():
        m = re.match(r"(.*\.attn)\.qkv\.(weight|bias)$", key)
        if separate_qkv and m:
            for part, chunk in zip("qkv", value.chunk(3, dim=0)):
                out[f"{m.group(1)}.{part}.{m.group(2)}"] = chunk.clone()
        else:
            out[key] = value
    return out
