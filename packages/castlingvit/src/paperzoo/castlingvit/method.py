"""Training Castling-ViT: classification with the auxiliary branch annealed away, then castling.

The official release has no training code and no regulariser (its ``attention.py`` holds the
branch with a constant 0.02 threshold); the paper's abstract says that "the masks for softmax
attention are regularized to gradually become zeros". This is our design of that, labelled so
in the README:

- ``schedule="cosine"``: the mask threshold follows
  :func:`paperzoo.kernels.castling.sparse_threshold_schedule` (0.02 until ``begin``, a
  half-cosine to 1.0 at ``end``, fractions of training). From τ = 1 the mask M = [S > τ] is
  exactly zero (softmax weights are at most 1), and the model is castled then and there: the
  branch computes nothing from that step on, bit for bit the same as computing its zeros.
- ``schedule="constant"``: the official code's constant threshold (no annealing).
- ``penalty`` > 0 adds ``penalty`` x the mean kept masked mass Σⱼ (M⊙S)ᵢⱼ (in [0, 1], averaged
  over blocks, heads and query tokens) to the loss, pushing the softmax weights under the
  threshold. 0 by default (the tiny recipe uses the schedule only).

The schedule is a function of the step, so a resumed run continues it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from paperzoo.kernels.castling import (
    OFFICIAL_SPARSE_THRESHOLD,
    castle,
    set_sparse_threshold,
    sparse_mass,
    sparse_threshold_schedule,
)
from paperzoo.train.classification import Classification

__all__ = ["CastlingClassification"]


class CastlingClassification(Classification):
    """:class:`paperzoo.train.classification.Classification` plus the Castling mask schedule.

    ``total_steps`` (optimizer steps of the whole run) must be set before training, e.g. from
    ``Trainer.max_steps``. ``training_step`` also returns ``tau`` (the threshold used) and,
    while the branch runs, ``sparse_mass``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        schedule: Literal["cosine", "constant"] = "cosine",
        begin: float = 0.0,
        end: float = 0.75,
        threshold: float = OFFICIAL_SPARSE_THRESHOLD,
        penalty: float = 0.0,
        total_steps: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown mask schedule {schedule!r}; use 'cosine' or 'constant'")
        if schedule == "cosine":
            sparse_threshold_schedule(0.0, start=threshold, begin=begin, end=end)  # validates
        self.schedule, self.begin, self.end = schedule, begin, end
        self.threshold, self.penalty, self.total_steps = threshold, penalty, total_steps

    def threshold_at(self, step: int) -> float:
        """τ for optimizer step ``step`` (0-based)."""
        if self.schedule == "constant":
            return self.threshold
        if self.total_steps < 1:
            raise ValueError("CastlingClassification.total_steps must be set (Trainer.max_steps)")
        progress = step / self.total_steps
        return sparse_threshold_schedule(
            progress, start=self.threshold, begin=self.begin, end=self.end
        )

    def training_step(self, batch: Sequence[Any], step: int) -> dict[str, torch.Tensor]:
        tau = self.threshold_at(step)
        if tau >= 1.0:
            castle(self.model)  # the mask is exactly zero from here on
        else:
            set_sparse_threshold(self.model, tau)
        out = super().training_step(batch, step)
        mass = sparse_mass(self.model)
        if mass is not None:
            if self.penalty > 0:
                out["loss"] = out["loss"] + self.penalty * mass
            out["sparse_mass"] = mass.detach()
        out["tau"] = torch.tensor(tau)
        return out
