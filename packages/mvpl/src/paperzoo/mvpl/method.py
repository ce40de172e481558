"""MvPL's training objective: FixMatch-style pseudo-labels aggregated over views.

Xiong, Fan, Grauman, Feichtenhofer, "Multiview Pseudo-Labeling for Semi-supervised Learning
from Video", ICCV 2021 (arXiv 2104.00682); FixMatch: Sohn et al., NeurIPS 2020
(arXiv 2001.07685).

Per the paper (Figure 2's caption): "Given an unlabeled video, we first obtain a
weakly-augmented version of each view and then obtain predictions on them. Then we generate
pseudo-labels by aggregating predictions from all the views. The pseudo-labels are used as a
supervision signal for the strongly-augmented version of each view from the same video."

- :func:`aggregate_pseudo_labels`: the mean of the weak views' softmax, its arg-max and a
  confidence mask (``max prob >= threshold``).
- :func:`masked_cross_entropy`: FixMatch's unlabelled loss, the cross-entropy of the strong
  logits to the pseudo-labels, averaged over the whole unlabelled batch with the masked-out
  samples contributing zero.
- :func:`strong_augment`: RandAugment (torchvision's, one draw per clip, the same for all its
  frames) and Cutout, the strong augmentation of the RGB clip; the temporal-gradient view is
  then taken from the strongly augmented frames, and the flow gets its own Cutout.
- :class:`MvPL`, the paperzoo method: labelled loss on every view (the model must classify
  every view to predict on it), plus ``lambda_u`` times the unlabelled loss averaged over views.
  With one view (``("rgb",)``) it is FixMatch on RGB; with ``semi=False`` it is the supervised
  baseline on the labelled clips alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.mvpl.model import MultiviewNet
from paperzoo.mvpl.views import temporal_gradient

__all__ = [
    "MvPL",
    "aggregate_pseudo_labels",
    "cutout_",
    "masked_cross_entropy",
    "strong_augment",
]


def aggregate_pseudo_labels(
    weak_logits: Sequence[torch.Tensor], threshold: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pseudo-labels from the weak views: ``probs = mean_v softmax(weak_logits[v])``.

    ``weak_logits``: one (B, K) tensor per view. Returns ``(labels, mask, confidence)``:
    int64 (B,) arg-max of ``probs``, float (B,) 1 where ``max(probs) >= threshold`` else 0,
    and float (B,) ``max(probs)``. No gradient flows through them.
    """
    if not weak_logits:
        raise ValueError("aggregate_pseudo_labels needs the logits of at least one view")
    with torch.no_grad():
        probs = torch.stack([z.detach().float().softmax(dim=-1) for z in weak_logits]).mean(0)
        confidence, labels = probs.max(dim=-1)
        mask = (confidence >= threshold).float()
    return labels, mask, confidence


def masked_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """``mean_b(mask_b * CE(logits_b, labels_b))`` over the whole batch (FixMatch's L_u): a
    sample below the threshold adds zero but still counts in the mean."""
    return (F.cross_entropy(logits, labels, reduction="none") * mask).mean()


def cutout_(
    clip: torch.Tensor, fraction: float, value: float, generator: Any = None
) -> torch.Tensor:
    """In place: a square of side ``fraction * min(H, W)`` at a uniform centre (clipped at the
    border), the same in every frame, set to ``value``. ``clip`` (C, T, H, W)."""
    if fraction <= 0:
        return clip
    h, w = clip.shape[-2:]
    side = max(1, round(fraction * min(h, w)))
    cy = int(torch.randint(0, h, (), generator=generator))
    cx = int(torch.randint(0, w, (), generator=generator))
    y0, y1 = max(0, cy - side // 2), min(h, cy + side - side // 2)
    x0, x1 = max(0, cx - side // 2), min(w, cx + side - side // 2)
    clip[..., y0:y1, x0:x1] = value
    return clip


def strong_augment(
    clips: torch.Tensor, *, num_ops: int = 2, magnitude: int = 9, cutout: float = 0.5
) -> torch.Tensor:
    """The strong augmentation of uint8 RGB clips (B, 3, T, H, W): per clip one RandAugment
    draw (``num_ops`` ops at ``magnitude`` of 31 bins, torchvision's) applied to all its frames,
    then Cutout (``cutout`` of the short side, grey). Returns float (B, 3, T, H, W) in [0, 1]."""
    from torchvision.transforms import v2

    out = torch.empty(clips.shape, dtype=torch.float32, device=clips.device)
    augment = v2.RandAugment(num_ops=num_ops, magnitude=magnitude) if num_ops > 0 else None
    for i, clip in enumerate(clips):
        frames = clip.permute(1, 0, 2, 3)  # (T, 3, H, W): RandAugment's batch of images
        if augment is not None:
            frames = augment(frames)
        out[i] = frames.permute(1, 0, 2, 3).float().div_(255.0)
        cutout_(out[i], cutout, 0.5)
    return out


class MvPL(nn.Module):
    """The MvPL method on a :class:`~paperzoo.mvpl.model.MultiviewNet`.

    A batch (from :class:`paperzoo.mvpl.data.SemiSupervisedClips`) is ``(l_clip, l_flow,
    l_label, u_clip, u_flow, u_label)``: weakly augmented labelled and unlabelled clips,
    uint8 (B, 3, T + 1, H, W) RGB and (B, 2, T, H, W) flow in pixels, with int64 (B,) labels.
    The first ``ceil(B / mu)`` labelled clips are used (FixMatch's labelled:unlabelled ratio
    1 : ``mu``); ``u_label`` is read only to log the pseudo-labels' precision.

    View inputs: RGB ``(x / 255 - mean) / std`` of the first T frames; temporal gradient
    ``diff(x / 255) / tg_std`` over the T + 1 frames; flow ``flow / flow_scale``.

    ``forward(x)``: the RGB view (normalised (B, 3, T, H, W)) -> logits, for testing.
    """

    def __init__(
        self,
        model: MultiviewNet,
        *,
        views: Sequence[str] = ("rgb", "tg", "flow"),
        semi: bool = True,
        threshold: float = 0.3,
        lambda_u: float = 1.0,
        mu: int = 7,
        mean: Sequence[float] = (0.45, 0.45, 0.45),
        std: Sequence[float] = (0.225, 0.225, 0.225),
        tg_std: float = 0.225,
        flow_scale: float = 20.0,
        randaugment_ops: int = 2,
        randaugment_magnitude: int = 9,
        cutout: float = 0.5,
    ) -> None:
        super().__init__()
        missing = [v for v in views if v not in model.views]
        if missing:
            raise ValueError(f"the model has no stem for view(s) {missing}; it has {model.views}")
        if not 0.0 <= threshold <= 1.0 or mu < 1 or lambda_u < 0:
            raise ValueError(
                f"need 0 <= threshold <= 1, mu >= 1, lambda_u >= 0; got {threshold}, {mu}, {lambda_u}"
            )
        self.model = model
        self.views = tuple(views)
        self.semi = semi
        self.threshold, self.lambda_u, self.mu = threshold, lambda_u, mu
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1, 1), persistent=False)
        self.tg_std, self.flow_scale = tg_std, flow_scale
        self.randaugment_ops, self.randaugment_magnitude = randaugment_ops, randaugment_magnitude
        self.cutout = cutout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, "rgb")

    # -- view inputs ------------------------------------------------------------------------

    def view_inputs(
        self, rgb01: torch.Tensor, flow: torch.Tensor | None, views: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """The network inputs of ``views`` from RGB in [0, 1] (B, 3, T + 1, H, W) and flow in px
        (B, 2, T, H, W)."""
        out = {}
        for view in views:
            if view == "rgb":
                out[view] = (rgb01[:, :, :-1] - self.mean) / self.std
            elif view == "tg":
                out[view] = temporal_gradient(rgb01) / self.tg_std
            elif view == "flow":
                if flow is None:
                    raise ValueError("the flow view needs the batch's flow")
                out[view] = flow.float() / self.flow_scale
        return out

    def _strong(self, clip: torch.Tensor, flow: torch.Tensor) -> dict[str, torch.Tensor]:
        rgb = strong_augment(
            clip, num_ops=self.randaugment_ops, magnitude=self.randaugment_magnitude,
            cutout=self.cutout,
        )  # fmt: skip
        flow = flow.float().clone()
        if "flow" in self.views:
            for f in flow:
                cutout_(f, self.cutout, 0.0)
        return self.view_inputs(rgb, flow, self.views)

    # -- the step ---------------------------------------------------------------------------

    def training_step(self, batch: Sequence[Any], step: int) -> dict[str, torch.Tensor]:
        l_clip, l_flow, l_y, u_clip, u_flow, u_y = batch[:6]
        n_l = max(1, math.ceil(len(u_clip) / self.mu))
        l_clip, l_flow, l_y = l_clip[:n_l], l_flow[:n_l], l_y[:n_l]
        weak_l = self.view_inputs(l_clip.float() / 255.0, l_flow, self.views)
        if not self.semi:
            logits = [self.model(weak_l[v], v) for v in self.views]
            loss_s = torch.stack([F.cross_entropy(z, l_y) for z in logits]).mean()
            top1 = (logits[0].detach().argmax(1) == l_y).float().mean()
            return {"loss": loss_s, "loss_s": loss_s.detach(), "top1": top1}

        # Pseudo-labels from the weak unlabelled views (no gradient; train-mode BN, as FixMatch).
        weak_u = self.view_inputs(u_clip.float() / 255.0, u_flow, self.views)
        with torch.no_grad():
            weak_logits = [self.model(weak_u[v], v) for v in self.views]
        labels, mask, _ = aggregate_pseudo_labels(weak_logits, self.threshold)
        strong_u = self._strong(u_clip, u_flow)
        loss_s, loss_u = [], []
        for v in self.views:
            # Labelled weak and unlabelled strong clips through the network together.
            logits = self.model(torch.cat([weak_l[v], strong_u[v]]), v)
            loss_s.append(F.cross_entropy(logits[:n_l], l_y))
            loss_u.append(masked_cross_entropy(logits[n_l:], labels, mask))
            if v == "rgb":
                top1 = (logits[:n_l].detach().argmax(1) == l_y).float().mean()
        ls, lu = torch.stack(loss_s).mean(), torch.stack(loss_u).mean()
        correct = (labels == u_y).float()
        coverage = mask.mean()
        return {
            "loss": ls + self.lambda_u * lu,
            "loss_s": ls.detach(),
            "loss_u": lu.detach(),
            "top1": top1,
            # Per batch; the exact per-window precision is pl_correct / pl_coverage.
            "pl_coverage": coverage,
            "pl_correct": (correct * mask).mean(),
            "pl_precision": (correct * mask).sum() / mask.sum().clamp(min=1.0),
            "pl_accuracy": correct.mean(),  # of all pseudo-labels, masked or not
        }

    def trainable_module(self) -> nn.Module:
        return self.model
