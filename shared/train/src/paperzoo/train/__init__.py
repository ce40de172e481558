"""paperzoo.train: the one training loop every paperzoo paper uses, and its evaluation protocols.

A paper provides a *method*: an ``nn.Module`` with ``training_step(batch, step) -> dict`` holding
``"loss"`` (other scalars are logged), and optionally ``on_after_optimizer_step(step)`` (momentum
encoders), ``param_groups()`` (custom optimizer groups) and ``trainable_module()`` (what is saved
as ``model.safetensors``). :class:`Trainer` owns everything else: optimizer and LR schedule,
AMP, gradient accumulation and clipping, EMA, ``torch.compile``, DDP/FSDP2 under torchrun,
atomic checkpoints with exact resume, ``metrics.jsonl``, TensorBoard and a loss-curve PNG.

    from paperzoo.train import Trainer
    state = Trainer(method, dataset, ctx, cfg.trainer, cfg.optim, batch_size=256).fit()

Evaluation protocols (kNN, linear probe, top-k accuracy) live in :mod:`paperzoo.train.eval`;
the torchrun helpers in :mod:`paperzoo.train.distributed`.
"""

# Public names resolve lazily (PEP 562): the plugin module (paperzoo.train.plugin) lives in this
# package, and discovering it must not import torch.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "CheckpointSaveError": "paperzoo.train.checkpointing",
    "find_latest_checkpoint": "paperzoo.train.checkpointing",
    "load_training_checkpoint": "paperzoo.train.checkpointing",
    "save_model_safetensors": "paperzoo.train.checkpointing",
    "LARS": "paperzoo.train.optim",
    "build_optimizer": "paperzoo.train.optim",
    "build_scheduler": "paperzoo.train.optim",
    "lr_factor": "paperzoo.train.optim",
    "seed_everything": "paperzoo.train.seeding",
    "SyncBatchNorm": "paperzoo.train.sync_bn",
    "convert_sync_batchnorm": "paperzoo.train.sync_bn",
    "Trainer": "paperzoo.train.trainer",
    "TrainState": "paperzoo.train.trainer",
}
_SUBMODULES = ("distributed", "eval")

__all__ = [
    "LARS",
    "CheckpointSaveError",
    "SyncBatchNorm",
    "TrainState",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "convert_sync_batchnorm",
    "distributed",
    "eval",
    "find_latest_checkpoint",
    "load_training_checkpoint",
    "lr_factor",
    "save_model_safetensors",
    "seed_everything",
]

if TYPE_CHECKING:
    from paperzoo.train import distributed, eval
    from paperzoo.train.checkpointing import (
        CheckpointSaveError,
        find_latest_checkpoint,
        load_training_checkpoint,
        save_model_safetensors,
    )
    from paperzoo.train.optim import LARS, build_optimizer, build_scheduler, lr_factor
    from paperzoo.train.seeding import seed_everything
    from paperzoo.train.sync_bn import SyncBatchNorm, convert_sync_batchnorm
    from paperzoo.train.trainer import Trainer, TrainState


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"paperzoo.train.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'paperzoo.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
