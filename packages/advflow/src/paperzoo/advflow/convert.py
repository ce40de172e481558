"""Checkpoint loading for the Adversarial Flow Models generators and discriminators.

The official release (github.com/ByteDance-Seed/Adversarial-Flow-Models, README and
``generate.py``) ships plain ``torch.save`` state dicts: ``{b2,m2,l2,xl2}_1nfe_{guided,
noguide}_FID*.pth``, ``xl2_2nfe_*.pth``, ``xl2_4nfe_guided_FID2.03.pth``,
``xl2_56layer_1nfe_guided_FID2.08.pth``, ``xl2_112layer_1nfe_guided_FID1.94.pth``. Their keys
are facebookresearch/DiT's, without a prefix, which are our modules' own
(:mod:`paperzoo.advflow.model`), so converting is reading and checking:

- 1NFE files have no ``t_embedder.*``; fixed-step and deep ones have it; any-step ones also
  ``t_tgt_embedder.*``. ``y_embedder.embedding_table`` is [1000, D] (no null row), the output
  has 4 channels (``learn_sigma=False``).
- The discriminator layout: the DiT backbone without ``final_layer``, plus ``dis_embed`` [D]
  and ``final_layer.1.weight`` [1, D] (and ``t_embedder.*`` for the multi-step ones).
- The guided stage's ``classifier.pth`` (``Classifier``): the DiT backbone with ``t_embedder``,
  without ``y_embedder`` and DiT's ``final_layer``, plus ``cls_embed`` [D] and
  ``final_layer.1.{weight,bias}`` [num_classes, D] / [num_classes].

Also read: our Trainer's outputs, ``model.safetensors`` / ``model_ema.safetensors`` (the
generator alone, in the same keys) and ``checkpoints/step_*.pt`` (the whole :class:`AdvFlow`
method: the ``generator.``, ``discriminator.`` or ``classifier.`` part is taken). A DDP ``module.`` prefix and
the usual wrappers (``state_dict``, ``model``, ``ema``) are removed by
:func:`paperzoo.core.checkpoint.unwrap_state_dict`. Files are read with safetensors or
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from paperzoo.core.checkpoint import CheckpointMismatchError, read_state_dict, unwrap_state_dict

__all__ = ["convert_state_dict", "load_checkpoint"]


def _part(state: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """The generator's or discriminator's keys of an AdvFlow method state, else ``state``."""
    from paperzoo.advflow.model import AdvFlowClassifier, AdvFlowDiscriminator

    if isinstance(model, AdvFlowClassifier):
        prefix = "classifier."
    elif isinstance(model, AdvFlowDiscriminator):
        prefix = "discriminator."
    else:
        prefix = "generator."
    if any(k.startswith(prefix) for k in state) and not any(
        k.startswith("x_embedder.") for k in state
    ):
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def convert_state_dict(state: Any, model: nn.Module) -> dict[str, Any]:
    """An official (or our Trainer's) state dict -> ``model``'s keys (the same names)."""
    return _part(unwrap_state_dict(state), model)


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load ``path`` into ``model`` strictly. A missing or unexpected ``t_embedder`` says which
    generator kind the file is for; a shape mismatch names the key and the constructor argument
    to change (:func:`paperzoo.gen.convert.load_official_state_dict`)."""
    from paperzoo.gen.convert import load_official_state_dict

    state = convert_state_dict(read_state_dict(path), model)
    own = set(model.state_dict())
    has_t, wants_t = (
        any(k.startswith("t_embedder.") for k in state),
        any(k.startswith("t_embedder.") for k in own),
    )
    if has_t != wants_t:
        kind = "a multi-step, any-step or deep (time-conditioned)" if has_t else "a 1NFE"
        raise CheckpointMismatchError(
            f"{path} is {kind} checkpoint ({'has' if has_t else 'has no'} t_embedder) but "
            f"{type(model).__name__} {'has none' if has_t else 'has one'}: build the matching "
            "model (advflow_*_1nfe for 1NFE files; *_2nfe / *_4nfe / *_56layer_* / "
            "*_112layer_* for the others; a discriminator with use_time=True for multi-step)"
        )
    try:
        load_official_state_dict(model, state)
    except ValueError as exc:
        raise CheckpointMismatchError(f"{path} does not fit {type(model).__name__}: {exc}") from exc
    return model
