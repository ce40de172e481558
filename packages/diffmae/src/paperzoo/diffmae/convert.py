"""Checkpoint loading for DiffMAE models.

No DiffMAE weights were released (no official code either). What is read instead is the layout
that MAE-style training code writes, since DiffMAE's encoder keeps MAE's: ``checkpoint-N.pth``
of facebookresearch/mae ``util/misc.py:save_model``, a dict ``{"model": state_dict,
"optimizer", "epoch", "scaler", "args"}`` with ``args`` an ``argparse.Namespace``; also a plain
state dict, paperzoo's ``model.safetensors``, and the Trainer's ``checkpoints/*.pt`` (the
method's state under ``model.``).

Everything is read without unpickling code: safetensors, or ``torch.load(weights_only=True)``
with ``argparse.Namespace`` (a plain attribute bag) allowed as the one extra class.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paperzoo.core.checkpoint import (
    CheckpointMismatchError,
    describe_keys,
    load_state_dict_strict,
    unwrap_state_dict,
)
from paperzoo.diffmae.method import encoder_state_dict
from paperzoo.diffmae.model import ViTClassifier

__all__ = ["load_checkpoint", "read_checkpoint"]


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The model state dict in ``path`` (any layout of the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path), device="cpu")
    else:
        try:
            with torch.serialization.safe_globals([argparse.Namespace]):
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointMismatchError(
                f"{path}: cannot be read safely with torch.load(weights_only=True): {exc}"
            ) from exc
    state = unwrap_state_dict(state)
    keys = list(state)
    if keys and all(k.startswith("model.") for k in keys):  # the Trainer's method state
        state = {k[len("model.") :]: v for k, v in state.items()}
    return state


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load ``path`` into ``model``: strictly for a pre-training model; for a
    :class:`~paperzoo.diffmae.model.ViTClassifier` from a pre-training checkpoint, the encoder's
    keys (strictly: every one of them must be there and fit) and a fresh ``fc_norm`` / ``head``,
    as MAE's fine-tuning does; a classifier checkpoint loads strictly."""
    state = read_checkpoint(path)
    if isinstance(model, ViTClassifier) and "head.weight" not in state:
        result = model.load_state_dict(encoder_state_dict(state), strict=False)  # shapes checked
        missing = [k for k in result.missing_keys if not k.startswith(("fc_norm.", "head."))]
        if missing or result.unexpected_keys:
            raise CheckpointMismatchError(
                f"{path} does not hold the encoder of {type(model).__name__}: missing "
                f"{describe_keys(missing)}; unexpected {describe_keys(result.unexpected_keys)}"
            )
        return model
    load_state_dict_strict(model, state, source=str(path))
    return model
