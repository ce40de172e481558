"""Training checkpoints: atomic writes, safe loading, keep-last-N, and final safetensors weights.

A training checkpoint (``checkpoints/step_0000500.pt``) is one ``torch.save`` of a dict made only
of tensors, ints, floats, strings, lists and dicts, so it loads with
``torch.load(weights_only=True)`` and never unpickles code. It is written to a temporary file
next to the target, fsynced and renamed over it (``paperzoo.core.io.atomic_path``): a kill or a
full disk at any moment leaves the previous checkpoint untouched.

Layout (``format == "paperzoo.train/1"``)::

    step, epoch, batch_in_epoch   optimizer steps done; epoch; micro-batches of it consumed
    world_size, batch_size, seed
    model, optimizer, scheduler, scaler, ema   state dicts ({} when unused)
    rng                           one entry per rank (paperzoo.train.seeding.get_rng_state)
    method                        the method's class name (for error messages)

A method with several optimizers (``optimizer_param_groups()``, e.g. a GAN) stores
``optimizer``, ``scheduler`` and ``scaler`` as dicts keyed by optimizer name, plus::

    optimizer_names               the names, e.g. ["discriminator", "generator"]
    step_plan                     the step plan's description (its position follows from step)

and ``ema`` holds the EMA of the method's ``ema_module()`` (e.g. the generator) when it has one.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paperzoo.core.checkpoint import CheckpointMismatchError
from paperzoo.core.io import atomic_path

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointSaveError",
    "checkpoint_path",
    "find_latest_checkpoint",
    "list_checkpoints",
    "load_training_checkpoint",
    "prune_checkpoints",
    "save_model_safetensors",
    "save_training_checkpoint",
]

CHECKPOINT_FORMAT = "paperzoo.train/1"
_NAME = re.compile(r"^step_(\d+)\.pt$")


class CheckpointSaveError(RuntimeError):
    """Writing a checkpoint failed; the previous checkpoint (if any) is still intact."""


def checkpoint_path(directory: str | os.PathLike[str], step: int) -> Path:
    return Path(directory) / f"step_{step:07d}.pt"


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """Checkpoints in ``directory``, oldest (lowest step) first; temporary files are ignored."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def find_latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The highest-step checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save_training_checkpoint(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` atomically; raise :class:`CheckpointSaveError` naming the cause."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(dict(payload), tmp)
    except Exception as exc:
        previous = [p for p in list_checkpoints(path.parent) if p != path]
        kept = f"; the previous checkpoint {previous[-1]} is intact" if previous else ""
        raise CheckpointSaveError(
            f"could not write checkpoint {path}: {type(exc).__name__}: {exc}{kept}. "
            "Free disk space or fix permissions, then rerun with --resume."
        ) from exc
    return path


def load_training_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training checkpoint with ``torch.load(weights_only=True)`` and check its format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointMismatchError(
            f"{path} cannot be read as a paperzoo training checkpoint "
            f"(torch.load(weights_only=True) failed: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointMismatchError(
            f"{path} is not a paperzoo training checkpoint (format {found!r}, expected "
            f"{CHECKPOINT_FORMAT!r}); to load plain weights use paperzoo.core.checkpoint.load_weights"
        )
    return payload


def prune_checkpoints(directory: str | os.PathLike[str], keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (keep <= 0 keeps all); return the deleted."""
    if keep <= 0:
        return []
    found = list_checkpoints(directory)
    doomed = found[:-keep]
    for p in doomed:
        try:
            p.unlink()
        except OSError as exc:  # pruning is housekeeping: never fail a run over it
            warnings.warn(f"could not delete old checkpoint {p}: {exc}", stacklevel=2)
    return doomed


def save_model_safetensors(
    module_or_state: nn.Module | Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a module's state dict (or a state dict) as safetensors, atomically.

    Tensors are copied to contiguous CPU tensors; tied weights are stored once per key, so the
    file loads back with ``safetensors.torch.load_file`` + ``load_state_dict(strict=True)``.
    """
    from safetensors.torch import save_file

    state = (
        module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    )
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=dict(metadata or {}))
    return path
