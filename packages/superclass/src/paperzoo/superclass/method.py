"""The training objectives: SuperClass's IDF-weighted caption classification, and CLIP / LiT.

SuperClass (arXiv:2411.03313, Sec. 3; official ``opencls/open_clip/loss.py``: ``ClsLoss``):

1. the caption's token ids (open_clip's ``SimpleTokenizer``, context 77, padded with 0)
   become a multi-hot target ``y`` (B, V): ``y[b, c] = 1`` for every id ``c`` in caption ``b``.
   As in the official code, the start, end and padding ids are not masked; they occur in every
   caption, so their IDF weight ends near 0;
2. running document frequency: ``cap_fq += y.sum(0) / B`` (this step's fraction of captions
   holding each id) and ``num_samples += 1`` (steps, not samples), averaged over the DDP ranks;
3. ``w = log((num_samples + 1/B_global) / (cap_fq + 1/B_global))``, ``y_hat = y * w``, then
   L1-normalised per row;
4. softmax cross-entropy: ``-(y_hat * log_softmax(logits)).sum(1).mean()``.

The paper writes the weight as ``log(|D| / (1 + df(c)))`` over the whole data set; the code
keeps the online version above (per-step fractions with 1/B smoothing), which is what is here.
The official code all-reduces the buffers themselves with ``ReduceOp.AVG``; here the step's
increment is averaged (``SUM`` / world size, which gloo supports too) and added to buffers that
are equal on every rank: the same numbers, and the buffers stay equal on every rank.

CLIP and LiT use open_clip's ``CLIP`` and ``ClipLoss`` (``local_loss`` and
``gather_with_grad`` as the official configs set them), and clamp ``logit_scale`` to
[0, ln 100] after each optimizer step as open_clip's training loop does.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.superclass.model import SuperClass, pooled_image_features

__all__ = [
    "ClipMethod",
    "SuperClassMethod",
    "idf_weighted_targets",
    "multi_hot",
    "soft_target_cross_entropy",
    "update_document_frequency",
]


def multi_hot(token_ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(B, L) int64 token ids -> (B, vocab_size) float32 with 1 at every id present."""
    targets = torch.zeros(token_ids.shape[0], vocab_size, device=token_ids.device)
    return targets.scatter_(1, token_ids.long(), 1.0)


@torch.no_grad()
def update_document_frequency(
    cap_fq: torch.Tensor, num_samples: torch.Tensor, targets: torch.Tensor
) -> int:
    """Add this step's document frequencies to the running buffers, in place, over all ranks.

    ``cap_fq`` (1, V) float64 gains the mean over ranks of ``targets.sum(0) / B``;
    ``num_samples`` (1, 1) gains 1. Returns the global batch (``B * world_size``).
    """
    import torch.distributed as dist

    increment = targets.sum(dim=0, keepdim=True).to(cap_fq.dtype) / targets.shape[0]
    world = 1
    if dist.is_available() and dist.is_initialized():
        world = dist.get_world_size()
        dist.all_reduce(increment, op=dist.ReduceOp.SUM)
        increment /= world
    cap_fq += increment
    num_samples += 1
    return targets.shape[0] * world


def idf_weighted_targets(
    token_ids: torch.Tensor,
    cap_fq: torch.Tensor,
    num_samples: torch.Tensor,
    *,
    update: bool = True,
) -> torch.Tensor:
    """(B, L) token ids -> (B, V) float32 IDF-weighted multi-hot targets (not yet normalised).

    With ``update`` (training) the statistics first take this step's captions, as the
    official loss does before it weighs them.
    """
    import torch.distributed as dist

    targets = multi_hot(token_ids, cap_fq.shape[1])
    if update:
        global_batch = update_document_frequency(cap_fq, num_samples, targets)
    else:
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        global_batch = targets.shape[0] * world
    eps = 1.0 / global_batch
    weights = torch.log((num_samples + eps) / (cap_fq + eps))
    return targets * weights.to(targets.dtype)


def soft_target_cross_entropy(logits: torch.Tensor, weighted_targets: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy against L1-normalised (B, V) targets; the mean over the batch."""
    target = F.normalize(weighted_targets, p=1, dim=1)
    log_prob = F.log_softmax(logits.float(), dim=1)
    return -(log_prob * target).sum(dim=1).mean()


class SuperClassMethod(nn.Module):
    """SuperClass pre-training: ``training_step((images, token_ids), step)``.

    images: (B, 3, H, W) normalised float; token_ids: (B, L) int64 from the CLIP tokenizer.
    ``idf=False`` is the paper's "w/o IDF" ablation (Table 7): plain L1-normalised multi-hot.
    """

    def __init__(self, model: SuperClass, *, idf: bool = True) -> None:
        super().__init__()
        self.model = model
        self.idf = idf

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        images, token_ids = batch[0], batch[1]
        logits = self.model(images)
        if self.idf:
            targets = idf_weighted_targets(
                token_ids, self.model.cap_fq, self.model.num_samples, update=True
            )
        else:
            targets = multi_hot(token_ids, self.model.vocab_size)
        loss = soft_target_cross_entropy(logits, targets)
        return {"loss": loss}

    def trainable_module(self) -> nn.Module:
        return self.model

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(images)


class ClipMethod(nn.Module):
    """CLIP (or LiT, with a locked image tower) through open_clip's ``ClipLoss``.

    ``training_step((images, token_ids), step)``; under torchrun the features of every rank are
    gathered (with gradients) so each rank's loss sees the global batch, as open_clip does.
    """

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.clip = clip
        self._loss: nn.Module | None = None

    def _clip_loss(self) -> nn.Module:
        if self._loss is None:
            import torch.distributed as dist
            from open_clip.loss import ClipLoss

            distributed = dist.is_available() and dist.is_initialized()
            self._loss = ClipLoss(
                local_loss=True,
                gather_with_grad=True,
                cache_labels=True,
                rank=dist.get_rank() if distributed else 0,
                world_size=dist.get_world_size() if distributed else 1,
            )
        return self._loss

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        images, token_ids = batch[0], batch[1]
        image_features = self.clip.encode_image(images, normalize=True)
        text_features = self.clip.encode_text(token_ids, normalize=True)
        scale = self.clip.logit_scale.exp()
        loss = self._clip_loss()(image_features, text_features, scale)
        return {"loss": loss, "logit_scale": scale.detach()}

    @torch.no_grad()
    def on_after_optimizer_step(self, step: int) -> None:
        self.clip.logit_scale.clamp_(0, math.log(100))

    def trainable_module(self) -> nn.Module:
        return self.clip

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return pooled_image_features(self.clip.visual, images)
