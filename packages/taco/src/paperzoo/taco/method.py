"""TaCo's training objective: MoCo's InfoNCE plus the transformation-prediction losses.

``L = L_contrast + sum_k lambda_k * CE(head_k(f(x_q)), y_k)``, where ``f(x_q)`` are the pooled
backbone features of the (temporally transformed) query clip, ``y_k`` the label of
transformation k drawn for it (:mod:`paperzoo.taco.transforms`) and ``lambda_k`` the task
weights. The contrastive part is paperzoo-mocov2's :class:`~paperzoo.mocov2.method.MoCoMethod`
(momentum update, shuffle-BN, queue); its ``contrast(..., query_features=...)`` hook hands back
the features of the same forward pass, so the heads cost no second backbone pass.

The contrastive part can also be one of the other frameworks the paper puts TaCo on
(``framework``), built on the same pieces:

- ``"moco"``: MoCo v2 (the default; the tiny study and the paper recipe);
- ``"simclr"``: SimCLR's NT-Xent (Chen et al. 2020, arXiv:2002.05709) over the 2B projections of
  both views by the query encoder, every other view of the (global) batch a negative,
  temperature ``model.temperature``; no key encoder or queue;
- ``"byol"``: BYOL (Grill et al. 2020, arXiv:2006.07733): the query encoder and projector plus a
  predictor (``TaCo(byol_predictor=True)``) regress the momentum key encoder's projection of the
  other view, ``2 - 2 cos``, symmetrised over the two views. The momentum is MoCo's fixed ``m``
  (BYOL increases it from 0.996 to 1 by a cosine; not done here) and the projector is MoCo v2's
  MLP (BYOL's has BatchNorm and 256 dims).

The switches give the four arms of the paper's question:

- ``contrastive=True, heads=False`` with no transformations: video MoCo (spatial augmentation);
- the same with transformations in the data: temporal augmentation alone;
- ``contrastive=True, heads=True``: TaCo;
- ``contrastive=False, heads=True``: the prediction tasks alone (no MoCo loss, queue untouched).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F

from paperzoo.mocov2.method import MoCoMethod, encode_in_chunks
from paperzoo.taco.model import TaCo
from paperzoo.train import distributed as dist_utils

__all__ = ["FRAMEWORKS", "TaCoMethod", "byol_loss", "nt_xent"]

FRAMEWORKS = ("moco", "simclr", "byol")


def _gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Every process's (B, D) rows in rank order, gradients flowing back to their owner."""
    if not dist_utils.is_dist():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent loss of two views' L2-normalised projections (B, D) of the same B clips.

    Each of the 2N projections of the global batch (N = B x processes) has its other view as the
    positive and the other 2N - 2 as negatives; the loss is the mean cross-entropy over all 2N.
    Under torch.distributed the projections of every process are gathered (with gradients).
    """
    z1, z2 = _gather_with_grad(z1), _gather_with_grad(z2)
    n = z1.shape[0]
    z = torch.cat([z1, z2], dim=0)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # a projection is not its own negative
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's regression loss, ``2 - 2 cos(prediction, target)``, averaged over the batch."""
    cos = F.cosine_similarity(prediction, target.detach(), dim=-1)
    return (2.0 - 2.0 * cos).mean()


class TaCoMethod(MoCoMethod):
    """MoCo's step with TaCo's heads, for :class:`paperzoo.train.Trainer`.

    Args:
        model: a :class:`~paperzoo.taco.model.TaCo`.
        contrastive: include the contrastive loss (off: the heads alone).
        framework: ``"moco"``, ``"simclr"`` or ``"byol"`` (see the module docstring).
        heads: include the transformation-prediction losses.
        task_weights: lambda_k per task (missing tasks weigh 1.0).
        shuffle_bn, bn_splits: as :class:`~paperzoo.mocov2.method.MoCoMethod`.

    Batches are ``([query, key], targets)``: clips (B, C, T, H, W) and ``targets`` a mapping
    task -> int64 (B,) labels of the query (what :class:`~paperzoo.taco.transforms.TaCoClips`
    collates to). Metrics: ``loss``, ``contrast_loss`` and ``contrast_acc1`` (with the MoCo
    loss), and ``<task>_loss`` / ``<task>_acc`` per head (accuracy in percent).
    """

    def __init__(
        self,
        model: TaCo,
        *,
        contrastive: bool = True,
        heads: bool = True,
        framework: Literal["moco", "simclr", "byol"] = "moco",
        task_weights: Mapping[str, float] | None = None,
        shuffle_bn: bool = True,
        bn_splits: int = 1,
    ) -> None:
        if not (contrastive or heads):
            raise ValueError("TaCoMethod needs the contrastive loss, the heads, or both")
        if framework not in FRAMEWORKS:
            raise ValueError(f"unknown framework {framework!r}; use one of {FRAMEWORKS}")
        if framework == "byol" and model.predictor is None:
            raise ValueError("framework='byol' needs a model built with byol_predictor=True")
        super().__init__(model, shuffle_bn=shuffle_bn, bn_splits=bn_splits)
        self.contrastive = contrastive
        self.heads = heads
        self.framework = framework
        self.task_weights = {name: 1.0 for name in model.tasks}
        unknown = set(task_weights or {}) - set(model.tasks)
        if unknown:
            raise ValueError(
                f"task_weights name tasks the model has no head for: {sorted(unknown)}"
            )
        self.task_weights.update(task_weights or {})

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        (im_q, im_k), targets = batch
        out: dict[str, torch.Tensor] = {}
        if not self.contrastive:
            _, pooled = self._project(im_q)
            loss = pooled.new_zeros(())
        elif self.framework == "moco":
            features: list[torch.Tensor] = []
            (logits,) = self.contrast([im_q], im_k, query_features=features)
            pooled = features[0]
            labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
            loss = F.cross_entropy(logits, labels)
            with torch.no_grad():
                out["contrast_acc1"] = (logits.argmax(dim=1) == 0).float().mean() * 100.0
        elif self.framework == "simclr":
            loss, pooled = self._simclr(im_q, im_k)
        else:
            loss, pooled = self._byol(im_q, im_k)
        if self.contrastive:
            out["contrast_loss"] = loss.detach()
        if self.heads:
            missing = set(self.model.tasks) - set(targets)
            if missing:
                raise ValueError(
                    f"the batch has no labels for the heads {sorted(missing)}: the data must "
                    "draw every transformation the model predicts"
                )
            for name, task_logits in self.model.predict_transformations(pooled).items():
                y = torch.as_tensor(targets[name], device=task_logits.device).long()
                task_loss = F.cross_entropy(task_logits, y)
                loss = loss + self.task_weights[name] * task_loss
                out[f"{name}_loss"] = task_loss.detach()
                with torch.no_grad():
                    out[f"{name}_acc"] = (task_logits.argmax(dim=1) == y).float().mean() * 100.0
        out["loss"] = loss
        return out

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return encode_in_chunks(self.model.encoder_q, x, self.bn_splits, return_features=True)

    def _simclr(self, im_q: torch.Tensor, im_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NT-Xent over both views by the query encoder; the first view's pooled features."""
        z1, pooled = self._project(im_q)
        z2, _ = self._project(im_k)
        loss = nt_xent(F.normalize(z1, dim=1), F.normalize(z2, dim=1), self.model.temperature)
        return loss, pooled

    def _byol(self, im_q: torch.Tensor, im_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """BYOL's symmetric loss: online(v1) regresses target(v2) and online(v2) target(v1)."""
        z1, pooled = self._project(im_q)
        z2, _ = self._project(im_k)
        with torch.no_grad():
            self.model.momentum_update_key_encoder()
            t1 = encode_in_chunks(self.model.encoder_k, im_q, self.bn_splits)
            t2 = encode_in_chunks(self.model.encoder_k, im_k, self.bn_splits)
        predictor = self.model.predictor
        loss = byol_loss(predictor(z1), t2) + byol_loss(predictor(z2), t1)
        return loss, pooled
