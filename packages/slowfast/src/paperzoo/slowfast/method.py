"""The training objective of SlowFast's AVA-style detection (classification is the shared
:class:`paperzoo.train.classification.Classification`).

A paperzoo method (``training_step(batch, step) -> {"loss": ...}``) for
:class:`paperzoo.train.Trainer`. As in PySlowFast (``BN.WEIGHT_DECAY: 0.0``), BatchNorm
parameters get no weight decay. Batches hold Fast-rate clips (B, C, T, H, W); the model
splits them into pathways (:func:`paperzoo.slowfast.model.pack_pathways`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.train.classification import norm_param_groups

__all__ = ["ActionDetection", "ava_collate"]


def ava_collate(
    items: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch :class:`paperzoo.data.datasets.AVAKeyframeDataset` items for the RoI head.

    Items are ``(clip (C, T, H, W), boxes (N_i, 4) normalised xyxy, labels (N_i, classes))``.
    Returns ``clips (B, C, T, H, W)``, ``boxes (K, 5)`` rows ``(batch_index, x1, y1, x2, y2)``
    in pixels of the clip (what :class:`~paperzoo.slowfast.model.ResNetRoIHead` takes) and
    ``labels (K, classes)``, K = sum N_i.
    """
    clips = torch.stack([item[0] for item in items])
    height, width = clips.shape[-2:]
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    rows = []
    for index, (_, boxes, _) in enumerate(items):
        batch_index = torch.full((boxes.shape[0], 1), float(index))
        rows.append(torch.cat([batch_index, boxes.float() * scale], dim=1))
    return clips, torch.cat(rows), torch.cat([item[2] for item in items]).float()


class ActionDetection(nn.Module):
    """AVA-style multi-label action detection: binary cross-entropy per box and class.

    PySlowFast trains AVA with ``LOSS_FUNC: bce`` on sigmoid scores; the model here returns
    logits and the loss applies the sigmoid (``binary_cross_entropy_with_logits``, the same
    loss, computed stably). Batch: :func:`ava_collate`'s ``(clips, boxes, labels)``.
    """

    def __init__(self, model: nn.Module, *, norm_weight_decay: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.norm_weight_decay = norm_weight_decay

    def forward(self, clips: Any, boxes: torch.Tensor) -> torch.Tensor:
        return self.model(clips, boxes)

    def training_step(self, batch: Sequence[Any], step: int) -> dict[str, torch.Tensor]:
        clips, boxes, labels = batch
        logits = self.model(clips, boxes)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        return {"loss": loss}

    def param_groups(self) -> list[dict[str, Any]]:
        return norm_param_groups(self.model, self.norm_weight_decay)

    def trainable_module(self) -> nn.Module:
        return self.model
