"""Official MoCo checkpoints <-> paperzoo, and backbone export for transfer.

The official pre-training checkpoints (``moco_v1_200ep_pretrain.pth.tar``,
``moco_v2_200ep_pretrain.pth.tar``, ``moco_v2_800ep_pretrain.pth.tar`` from
https://github.com/facebookresearch/moco) are ``torch.save``d dicts::

    {"epoch": 800, "arch": "resnet50",
     "state_dict": {"module.encoder_q.conv1.weight": ..., ..., "module.encoder_q.fc.0.weight",
                    "module.encoder_q.fc.2.weight", ..., "module.encoder_k.*",
                    "module.queue": (128, 65536), "module.queue_ptr": (1,)},
     "optimizer": {...}}

:class:`paperzoo.mocov2.model.MoCo` keeps the official attribute names, so the conversion is
dropping the DDP ``module.`` prefix; the keys are then checked strictly, and a mismatch raises
:class:`paperzoo.core.checkpoint.CheckpointMismatchError` listing the keys that differ. Files
are read with ``torch.load(weights_only=True)`` (the official files hold only tensors, ints,
strings and dicts) or safetensors; nothing is unpickled.

Exports (as the official ``main_lincls.py`` and ``detection/convert-pretrain-to-detectron2.py``
do): the query encoder without its head, as a torchvision ResNet state dict (linear evaluation,
fine-tuning) or with detectron2's names (detection transfer). Command line::

    python -m paperzoo.mocov2.convert moco_v2_800ep_pretrain.pth.tar r50.safetensors
    python -m paperzoo.mocov2.convert moco_v2_800ep_pretrain.pth.tar r50_d2.pkl --format detectron2
"""

from __future__ import annotations

import argparse
import os
import pickle
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

__all__ = [
    "load_official_checkpoint",
    "main",
    "official_to_paperzoo",
    "to_detectron2_state_dict",
    "to_torchvision_state_dict",
    "write_backbone",
]


def official_to_paperzoo(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The MoCo state dict inside an official checkpoint (or a bare state dict).

    Unwraps ``checkpoint["state_dict"]`` and drops the DDP ``module.`` prefix: keys become
    ``encoder_q.*``, ``encoder_k.*``, ``queue``, ``queue_ptr``, the keys of
    :class:`~paperzoo.mocov2.model.MoCo`. A file saved by paperzoo (``model.safetensors``)
    already has these keys and passes through unchanged.
    """
    return unwrap_state_dict(checkpoint)


def _hint(state: Mapping[str, Any], model: nn.Module) -> str:
    keys = list(state)
    if keys and not any(k.startswith(("encoder_q.", "encoder_k.")) for k in keys):
        if any(k.startswith(("conv1.", "layer1.")) for k in keys):
            return (
                " This looks like a plain ResNet state dict (e.g. a linear-classification or "
                "torchvision checkpoint), not a MoCo pre-training checkpoint with encoder_q.*/"
                "encoder_k.*/queue; load it into a torchvision ResNet instead."
            )
        return " A MoCo checkpoint holds encoder_q.*, encoder_k.*, queue and queue_ptr."
    own = model.state_dict()
    if "encoder_q.fc.weight" in state and "encoder_q.fc.0.weight" in own:
        return (
            " The checkpoint has MoCo v1's linear head (fc.weight); build the model with mlp=False."
        )
    if "encoder_q.fc.0.weight" in state and "encoder_q.fc.weight" in own:
        return " The checkpoint has MoCo v2's MLP head (fc.0/fc.2); build the model with mlp=True."
    return ""


def load_official_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load an official MoCo pre-training checkpoint (or a paperzoo one) into ``model``.

    ``model`` is a :class:`~paperzoo.mocov2.model.MoCo` of the same architecture. This is the
    ``checkpoint_loader`` of the MoCo model specs, so
    ``create_model("mocov2_resnet50", checkpoint_path="moco_v2_800ep_pretrain.pth.tar")`` lands
    here. Keys and shapes must match exactly; otherwise the error lists what differs.
    """
    raw = read_state_dict(path)
    state = official_to_paperzoo(raw)
    try:
        load_state_dict_strict(model, state, source=str(path))
    except CheckpointMismatchError as exc:
        raise CheckpointMismatchError(f"{exc}.{_hint(state, model)}") from None
    return model


def _query_backbone(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    state = official_to_paperzoo(state)
    prefix = "encoder_q."
    out = {
        k[len(prefix) :]: v
        for k, v in state.items()
        if k.startswith(prefix) and not k.startswith(prefix + "fc.")
    }
    if not out:
        raise CheckpointMismatchError(
            "no encoder_q.* weights found: expected a MoCo pre-training checkpoint "
            "(keys module.encoder_q.* or encoder_q.*)"
        )
    return out


def to_torchvision_state_dict(state: Mapping[str, Any] | nn.Module) -> dict[str, torch.Tensor]:
    """The query encoder without its projection head, with torchvision ResNet keys.

    ``state``: an official checkpoint dict, a MoCo state dict, or a MoCo module. Load the result
    into ``torchvision.models.resnet50()`` with ``strict=False``: only ``fc.weight`` and
    ``fc.bias`` are missing (a new classifier), as ``main_lincls.py`` does.
    """
    if isinstance(state, nn.Module):
        state = state.state_dict()
    return {k: v.detach().clone() for k, v in _query_backbone(state).items()}


def to_detectron2_state_dict(state: Mapping[str, Any] | nn.Module) -> dict[str, Any]:
    """The query backbone renamed for detectron2, as the official converter script does.

    ``stem.conv1``, ``res2..res5`` for ``layer1..4``, ``convN.norm`` for ``bnN`` and
    ``shortcut``/``shortcut.norm`` for the downsample path. Returns the object the official
    script pickles: ``{"model": {name: numpy array}, "__author__": "MOCO",
    "matching_heuristics": True}``.
    """
    out = {}
    for key, value in to_torchvision_state_dict(state).items():
        new = key if "layer" in key else "stem." + key
        for t in (1, 2, 3, 4):
            new = new.replace(f"layer{t}", f"res{t + 1}")
        for t in (1, 2, 3):
            new = new.replace(f"bn{t}", f"conv{t}.norm")
        new = new.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")
        out[new] = value.numpy()
    return {"model": out, "__author__": "MOCO", "matching_heuristics": True}


def write_backbone(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], fmt: str = "torchvision"
) -> Path:
    """Read a MoCo checkpoint ``src`` and write its query backbone to ``dst`` (atomically).

    ``fmt="torchvision"``: a ``.safetensors`` file of torchvision ResNet keys (no fc).
    ``fmt="detectron2"``: the official converter's ``.pkl`` for detectron2's loader.
    """
    dst = Path(dst)
    state = read_state_dict(src)
    with atomic_path(dst) as tmp:
        if fmt == "torchvision":
            from safetensors.torch import save_file

            tensors = {k: v.contiguous() for k, v in to_torchvision_state_dict(state).items()}
            save_file(tensors, str(tmp))
        elif fmt == "detectron2":
            with open(tmp, "wb") as fh:
                pickle.dump(to_detectron2_state_dict(state), fh)
        else:
            raise ValueError(f"unknown export format {fmt!r}; use 'torchvision' or 'detectron2'")
    return dst


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m paperzoo.mocov2.convert SRC DST [--format torchvision|detectron2]``."""
    parser = argparse.ArgumentParser(
        prog="python -m paperzoo.mocov2.convert",
        description="Export the query backbone of a MoCo pre-training checkpoint.",
    )
    parser.add_argument("src", help="official .pth.tar or paperzoo model.safetensors")
    parser.add_argument(
        "dst", help="output file (.safetensors for torchvision, .pkl for detectron2)"
    )
    parser.add_argument("--format", default="torchvision", choices=["torchvision", "detectron2"])
    args = parser.parse_args(argv)
    out = write_backbone(args.src, args.dst, args.format)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
