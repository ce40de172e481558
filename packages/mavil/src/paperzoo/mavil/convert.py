"""Checkpoint loading for MAViL models.

No MAViL weights or training code were released (the official repository holds a README).
What is read instead is the layout that our own training writes: the Trainer's
``model.safetensors`` (the trained module's state: a :class:`~paperzoo.mavil.model.MAViL` or a
:class:`~paperzoo.mavil.model.MAViLClassifier`), its ``checkpoints/*.pt`` (the method's state
under ``model.``), and plain state dicts. The reading is paperzoo-diffmae's
:func:`~paperzoo.diffmae.convert.read_checkpoint` (safetensors, or ``torch.load`` with
``weights_only=True``). The classifier's keys follow the authors' inference code (av-superb):
a converter for a future official release would map its names to these.
"""

from __future__ import annotations

import os

from torch import nn

from paperzoo.core.checkpoint import CheckpointMismatchError, describe_keys, load_state_dict_strict
from paperzoo.diffmae.convert import read_checkpoint
from paperzoo.mavil.method import encoder_state_dict
from paperzoo.mavil.model import MAViLClassifier

__all__ = ["load_checkpoint", "read_checkpoint"]


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load ``path`` into ``model``.

    A pre-training model loads strictly. A :class:`MAViLClassifier` from a pre-training
    checkpoint takes the encoders (and, joint, the fusion blocks) it has, every one of their
    keys required, with a fresh ``head_norm`` / ``head``; from a classifier checkpoint it loads
    strictly.
    """
    state = read_checkpoint(path)
    if isinstance(model, MAViLClassifier) and "head.weight" not in state:
        own = set(model.state_dict())
        wanted = {k: v for k, v in encoder_state_dict(state).items() if k in own}
        result = model.load_state_dict(wanted, strict=False)  # shapes are checked
        missing = [k for k in result.missing_keys if not k.startswith(("head_norm.", "head."))]
        if missing or not wanted:
            raise CheckpointMismatchError(
                f"{path} does not hold the encoders of this {model.modality} classifier: "
                f"missing {describe_keys(missing or sorted(own))}"
            )
        return model
    load_state_dict_strict(model, state, source=str(path))
    return model
