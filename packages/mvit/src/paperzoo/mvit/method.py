"""Supervised video classification, the objective MViT is trained with (PySlowFast ``train_net``).

The method wraps a classifier for :class:`paperzoo.train.Trainer`: cross-entropy on hard labels
with label smoothing, or PySlowFast's ``soft_cross_entropy`` on the soft targets of
Mixup/CutMix. PySlowFast's ``SOLVER.ZERO_WD_1D_PARAM`` (no weight decay on biases and norms) is
the Trainer's ``optim.exclude_bias_norm``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VideoClassification", "soft_cross_entropy"]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum(targets * log_softmax(logits))``; targets (B, K) sum to 1."""
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()


class VideoClassification(nn.Module):
    """``training_step((clips, labels), step)`` -> loss (and top-1 on unmixed batches).

    Args:
        model: a classifier ``(B, C, T, H, W) -> (B, K)`` logits.
        label_smoothing: for hard labels (Mixup already smooths its soft targets).
        mixup: optional ``fn(clips, labels) -> (mixed_clips, soft_targets)`` applied per batch
            (e.g. :class:`paperzoo.data.transforms.MixupCutmix`).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        label_smoothing: float = 0.0,
        mixup: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
        | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing
        self.mixup = mixup

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.model(clips)

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        clips, labels = batch[0], batch[1]
        if self.mixup is not None:
            clips, targets = self.mixup(clips, labels)
            return {"loss": soft_cross_entropy(self.model(clips), targets)}
        logits = self.model(clips)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        top1 = (logits.detach().argmax(-1) == labels).float().mean()
        return {"loss": loss, "top1": top1}

    def trainable_module(self) -> nn.Module:
        return self.model
