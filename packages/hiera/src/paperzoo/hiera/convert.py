"""Checkpoint conversion: official Hiera and timm state dicts -> paperzoo Hiera.

State-dict keys are an API, so they are converted here and never renamed at load time.

- **Official** (github.com/facebookresearch/hiera, pip ``hiera-transformer``): a ``.pth`` with
  the weights under ``"model_state"``. Our :class:`~paperzoo.hiera.model.Hiera` uses the
  official key names (``patch_embed.proj``, ``blocks.N.attn.qkv``, ``norm``,
  ``head.projection``...), so a fine-tuned checkpoint converts one to one. An MAE checkpoint
  (``mae_hiera_*``: also ``encoder_norm``, ``multi_scale_fusion_heads``, ``decoder_*``,
  ``mask_token``) loads into a classifier as the official ``pretrained_model`` does with
  ``strict=False``: encoder weights only, ``norm`` and ``head`` keep their initialisation.
  Into :class:`~paperzoo.hiera.method.HieraMAE` it loads whole
  (:func:`convert_official_mae_state_dict`).
- **timm** (``timm/models/hiera.py``): the classifier is ``head.fc`` and the final norm
  ``head.norm`` (timm's ``checkpoint_filter_fn`` maps them from the official ``head.projection``
  and ``norm`` / ``encoder_norm``); everything else matches.

Files are read safely: safetensors, or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "MAE_ONLY_PREFIXES",
    "convert_official_mae_state_dict",
    "convert_official_state_dict",
    "convert_timm_state_dict",
    "detect_format",
    "load_checkpoint",
    "read_state_dict",
]

# Keys the official MaskedAutoencoderHiera has and the classifier does not.
MAE_ONLY_PREFIXES = (
    "encoder_norm.",
    "multi_scale_fusion_heads.",
    "decoder_embed.",
    "decoder_blocks.",
    "decoder_norm.",
    "decoder_pred.",
    "decoder_pos_embed",
    "mask_token",
)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint file: ``.safetensors`` or a torch file (``weights_only=True``).

    Returns the raw top-level dict (an official file still has its ``"model_state"`` wrapper).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors say little; name the file and the fix
        raise RuntimeError(
            f"could not read {path} with torch.load(weights_only=True) ({exc}); only plain "
            "tensor checkpoints are loaded. Re-save it as a state dict or safetensors."
        ) from exc


def _unwrap(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    for key in ("model_state", "model", "state_dict"):
        if key in state and isinstance(state[key], Mapping):
            return dict(state[key])
    return dict(state)


def detect_format(state: Mapping[str, Any]) -> str:
    """'official', 'official_mae', 'timm' or 'paperzoo_mae' for a (possibly wrapped) state dict."""
    sd = _unwrap(state)
    if any(k.startswith("encoder.blocks.") for k in sd):
        return "paperzoo_mae"
    if any(k.startswith("head.fc.") or k.startswith("head.norm.") for k in sd):
        return "timm"
    if any(k.startswith(MAE_ONLY_PREFIXES) for k in sd):
        return "official_mae"
    if any(k.startswith("blocks.") for k in sd):
        return "official"  # also paperzoo's own: the keys are the official ones
    raise ValueError(
        "not a Hiera checkpoint: no 'blocks.*' keys (first keys: "
        f"{sorted(sd)[:5]}); expected an official, timm or paperzoo Hiera state dict"
    )


def convert_official_state_dict(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Official classifier or MAE checkpoint -> paperzoo :class:`Hiera` keys.

    MAE-only tensors (decoder, fusion heads, ``encoder_norm``) are dropped, as the official
    loader drops them with ``strict=False``.
    """
    sd = _unwrap(state)
    return {k: v for k, v in sd.items() if not k.startswith(MAE_ONLY_PREFIXES)}


def convert_timm_state_dict(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """timm ``hiera_*`` state dict -> paperzoo :class:`Hiera` keys."""
    out = {}
    for k, v in _unwrap(state).items():
        if k.startswith("head.fc."):
            k = "head.projection." + k[len("head.fc.") :]
        elif k.startswith("head.norm."):
            k = "norm." + k[len("head.norm.") :]
        elif k == "pos_embed_win" or (k.startswith("blocks.") and ".ls" in k):
            raise ValueError(
                f"timm key {k!r} belongs to an 'abswin' / layer-scale Hiera variant, which is "
                "not the paper's model; only timm's hiera_{tiny..huge}_224 convert"
            )
        out[k] = v
    return out


def convert_official_mae_state_dict(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Official ``MaskedAutoencoderHiera`` state -> :class:`~paperzoo.hiera.method.HieraMAE`.

    Encoder tensors move under ``encoder.``; the official ``encoder_norm`` (applied after
    multi-scale fusion) is our encoder's ``norm``; decoder tensors keep their names.
    """
    out = {}
    for k, v in _unwrap(state).items():
        if k.startswith("encoder_norm."):
            out["encoder.norm." + k[len("encoder_norm.") :]] = v
        elif k.startswith(MAE_ONLY_PREFIXES):
            out[k] = v
        elif k.startswith(("norm.", "head.")):
            continue  # a classifier's head has no place in the MAE model
        else:
            out["encoder." + k] = v
    return out


def _to_classifier(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], bool]:
    """Convert any supported layout to classifier keys; also say whether it was an MAE file."""
    fmt = detect_format(state)
    if fmt == "timm":
        return convert_timm_state_dict(state), False
    if fmt == "paperzoo_mae":
        sd = _unwrap(state)
        enc = {k[len("encoder.") :]: v for k, v in sd.items() if k.startswith("encoder.")}
        # The MAE's encoder norm follows multi-scale fusion, not pooling: leave the classifier's
        # norm at init, as the official fine-tuning does with an MAE checkpoint.
        return {k: v for k, v in enc.items() if not k.startswith("norm.")}, True
    return convert_official_state_dict(state), fmt == "official_mae"


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], *, strict: bool = True
) -> nn.Module:
    """Load an official, timm or paperzoo Hiera checkpoint into ``model`` (in place).

    The ``ModelSpec.checkpoint_loader`` of every Hiera model, so
    ``create_model("hiera_base_224", checkpoint_path=P)`` reads all three layouts. An MAE
    (pretrain-only) checkpoint fills the encoder and leaves ``norm`` / ``head`` at init (with a
    warning), like the official loader. A classifier width mismatch is an error that names the
    ``num_classes`` to pass.
    """
    state, from_mae = _to_classifier(read_state_dict(path))
    own = model.state_dict()
    head_w = state.get("head.projection.weight")
    own_head = own.get("head.projection.weight")
    if head_w is not None and (own_head is None or own_head.shape != head_w.shape):
        have = 0 if own_head is None else own_head.shape[0]
        raise ValueError(
            f"{path}: classifier has {head_w.shape[0]} classes but the model has {have}; build "
            f"it with num_classes={head_w.shape[0]}"
        )
    for k, v in state.items():
        if k in own and own[k].shape != v.shape:
            raise ValueError(
                f"{path}: {k} has shape {tuple(v.shape)} but the model's is "
                f"{tuple(own[k].shape)}; is this checkpoint for a different Hiera size or "
                "input size?"
            )
    missing, unexpected = model.load_state_dict(state, strict=False)
    allowed_missing = (
        {k for k in missing if k.startswith(("norm.", "head."))} if from_mae else set()
    )
    bad_missing = [k for k in missing if k not in allowed_missing]
    if strict and (bad_missing or unexpected):
        raise ValueError(
            f"{path} does not match {type(model).__name__}: missing {bad_missing[:8]}"
            f"{'...' if len(bad_missing) > 8 else ''}, unexpected {unexpected[:8]}"
            f"{'...' if len(unexpected) > 8 else ''}. Check the model size / input size."
        )
    if allowed_missing:
        warnings.warn(
            f"{path} is an MAE (pretrain-only) checkpoint: loaded the encoder; "
            f"{sorted(allowed_missing)} keep their initialisation (fine-tune them)",
            stacklevel=2,
        )
    return model
