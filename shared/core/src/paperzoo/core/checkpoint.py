"""Safe weight loading shared by every package.

Nothing here unpickles arbitrary objects: ``.safetensors`` files are read with safetensors,
anything else with ``torch.load(weights_only=True)``. torch is imported lazily, so importing
this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CheckpointMismatchError",
    "describe_keys",
    "load_state_dict_strict",
    "load_weights",
    "read_state_dict",
    "unwrap_state_dict",
]

_CONTAINER_KEYS = ("state_dict", "model", "model_state", "module", "model_ema")


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model; the message lists the mismatched keys."""


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint file without unpickling code (safetensors or weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path), device="cpu"))
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointMismatchError(
            f"{path}: cannot be read safely with torch.load(weights_only=True): {exc}"
        ) from exc


def unwrap_state_dict(obj: Any) -> dict[str, Any]:
    """Dig the tensor dict out of the usual containers and drop a DDP ``module.`` prefix."""
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise CheckpointMismatchError(f"expected a state dict, found {type(obj).__name__}")
    keys = list(obj)
    if keys and all(k.startswith("module.") for k in keys):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def describe_keys(keys: list[str], limit: int = 12) -> str:
    """The first ``limit`` keys, comma-separated, then how many more (for error messages)."""
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_state_dict_strict(
    model: Any, state: Mapping[str, Any], *, source: str = "checkpoint"
) -> None:
    """Load ``state`` into ``model`` requiring the same keys and shapes; list what differs."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shape:
        parts = []
        if missing:
            parts.append(f"missing keys: {describe_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {describe_keys(unexpected)}")
        if shape:
            parts.append(f"shape mismatch (checkpoint vs model): {describe_keys(shape)}")
        raise CheckpointMismatchError(
            f"{source} does not match {type(model).__name__}: " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)


def load_weights(model: Any, path: str | os.PathLike[str]) -> Any:
    """Load a plain (possibly wrapped) state dict from ``path`` into ``model``, strictly."""
    load_state_dict_strict(model, unwrap_state_dict(read_state_dict(path)), source=str(path))
    return model
