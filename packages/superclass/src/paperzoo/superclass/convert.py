"""Checkpoints of the official SuperClass training code -> paperzoo.

No weights were released (the maintainers said so in x-cls/superclass issues #2 and #6), so
what loads is the layout the official training code writes (``opencls/training/main.py`` and
``train.py``), ``torch.save``d dicts::

    epoch_N.pt: {"epoch": N, "name": run name, "optimizer": {...}, "scaler": {...},
                 "state_dict": {"visual.class_embedding", "visual.positional_embedding",
                                "visual.conv1.weight", "visual.ln_pre.*",
                                "visual.transformer.resblocks.<i>.{ln_1, attn.in_proj_weight,
                                 attn.in_proj_bias, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}.*",
                                "visual.ln_post.*", "text_decoder.ln_mlp.*",
                                "text_decoder.text_projection.{weight (49408, D), bias}",
                                "cap_fq" float64 (1, 49408), "num_samples" float64 (1, 1)}}
    step_N.pt:  {"step", "epoch", "name", "optimizer", "scaler", "state_dict"} with every key
                under the DDP ``module.`` prefix (``model.state_dict()`` of the wrapped model).

:class:`paperzoo.superclass.model.SuperClass` keeps these names (its tower is open_clip's
``VisionTransformer``), so conversion drops the ``module.`` (and a ``torch.compile``
``_orig_mod.``) prefix, then the keys are checked strictly: a mismatch raises
:class:`paperzoo.core.checkpoint.CheckpointMismatchError` listing the keys that differ. Files
are read with ``torch.load(weights_only=True)`` (tensors, numbers, strings and dicts only).
The IDF statistics load with the weights, so training can continue from them.

Command line (writes our ``model.safetensors`` layout)::

    python -m paperzoo.superclass.convert epoch_1.pt superclass_b16.safetensors
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paperzoo.core.checkpoint import (
    CheckpointMismatchError,
    load_state_dict_strict,
    read_state_dict,
    unwrap_state_dict,
)
from paperzoo.core.io import atomic_path

__all__ = ["load_official_checkpoint", "main", "official_to_paperzoo", "write_converted"]

_PREFIXES = ("module.", "_orig_mod.")


def official_to_paperzoo(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The SuperClass state dict inside an official ``epoch_N.pt`` / ``step_N.pt`` (or a bare
    state dict, or a paperzoo ``model.safetensors``): keys ``visual.*``, ``text_decoder.*``,
    ``cap_fq``, ``num_samples``."""
    state = unwrap_state_dict(checkpoint)
    changed = True
    while changed and state:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def _hint(state: Mapping[str, Any], model: nn.Module) -> str:
    keys = list(state)
    if any(k in state for k in ("logit_scale", "token_embedding.weight", "visual.proj")):
        return (
            " This is an open_clip CLIP checkpoint (a CLIP baseline or a LiT stage: it has "
            "logit_scale / token_embedding / visual.proj); load it with open_clip, or build "
            "superclass_clip_vit_b16 and load its state dict."
        )
    if keys and not any(k.startswith("text_decoder.") for k in keys):
        return " A SuperClass checkpoint holds visual.*, text_decoder.*, cap_fq and num_samples."
    own = model.state_dict()
    w = state.get("text_decoder.text_projection.weight")
    if w is not None and "text_decoder.text_projection.weight" in own:
        mine = own["text_decoder.text_projection.weight"]
        if tuple(w.shape) != tuple(mine.shape):
            return (
                f" The checkpoint's head is {tuple(w.shape)} (vocab x width), the model's "
                f"{tuple(mine.shape)}: pick the model of the same size (superclass_vit_b16 "
                "is width 768, the L models 1024)."
            )
    return ""


def load_official_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load an official SuperClass training checkpoint (or a paperzoo one) into ``model``.

    ``model`` is a :class:`~paperzoo.superclass.model.SuperClass` of the same size; this is the
    ``checkpoint_loader`` of the SuperClass model specs, so
    ``create_model("superclass_vit_b16", checkpoint_path="epoch_1.pt")`` lands here.
    """
    state = official_to_paperzoo(read_state_dict(path))
    try:
        load_state_dict_strict(model, state, source=str(path))
    except CheckpointMismatchError as exc:
        raise CheckpointMismatchError(f"{exc}.{_hint(state, model)}") from None
    return model


def write_converted(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Read an official checkpoint ``src`` and write its state dict to ``dst`` (safetensors)."""
    from safetensors.torch import save_file

    dst = Path(dst)
    state = official_to_paperzoo(read_state_dict(src))
    if not any(k.startswith("text_decoder.") for k in state):
        raise CheckpointMismatchError(f"{src}: no text_decoder.* keys; not a SuperClass checkpoint")
    with atomic_path(dst) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    return dst


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m paperzoo.superclass.convert SRC DST``."""
    parser = argparse.ArgumentParser(
        prog="python -m paperzoo.superclass.convert",
        description="Convert an official SuperClass checkpoint (epoch_N.pt / step_N.pt).",
    )
    parser.add_argument("src", help="official epoch_N.pt or step_N.pt")
    parser.add_argument("dst", help="output .safetensors")
    args = parser.parse_args(argv)
    print(f"wrote {write_converted(args.src, args.dst)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
