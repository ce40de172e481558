"""The MoCo training objective: momentum update, shuffle-BN key encoding, InfoNCE, queue update.

Papers: MoCo v1 (He et al., CVPR 2020, arXiv:1911.05722) and MoCo v2 (Chen et al.,
arXiv:2003.04297). Follows the official ``moco/builder.py`` (facebookresearch/moco): the order
of one step is momentum update -> shuffled key forward -> unshuffle -> logits -> enqueue.

One method, with switches for v1 and v2, is driven by :class:`paperzoo.train.Trainer`:
the model (:class:`paperzoo.mocov2.model.MoCo`) carries the head (MLP for v2, linear for v1),
the temperature (0.2 for v2, 0.07 for v1), K and m; the recipe picks "aug" or "aug+" and the
cosine or step schedule.

Why shuffle-BN
--------------
BatchNorm computes its statistics over the samples that share a forward pass. If a query and
its positive key are encoded in BNs that see the same set of images, the key carries a
"signature" of that batch's statistics that the query shares; since all the negatives come from
the queue (older batches), the network can find the positive by matching batch statistics
instead of learning a good representation. The MoCo paper reports that the loss then drops
quickly while the representation is poor ("cheating").

The official fix runs BN per GPU and shuffles the *key* batch across GPUs before the key
encoder (all-gather the images, permute with an index broadcast from rank 0, each GPU encodes
its slice, then all-gather the keys and undo the permutation). The query of sample i and its
positive key are then normalised with statistics of two different subsets of the batch.

Single-process equivalent (``bn_splits``)
-----------------------------------------
Shuffling within one BN batch changes nothing (BN statistics are permutation-invariant), and a
single process that encodes the whole batch in one BN is exactly the leaking setup. So with
``bn_splits = G > 1`` this method simulates G GPUs in one process: the query batch is encoded
as G consecutive chunks, each with its own BN statistics (as per-GPU BN), and the key batch is
permuted, encoded as G chunks, and un-permuted, i.e. the official shuffle with G "virtual GPUs".
Given the same permutation, a 1-process run with ``bn_splits=G`` computes exactly what a
G-process DDP run with per-rank batches of N/G computes (tested). The official CIFAR-10 Colab
demo does the same with a ``SplitBatchNorm`` layer (``bn_splits=8``); running the encoder per
chunk gives identical statistics without replacing the BN layers, so the module keeps the
official state-dict keys. Under DDP the two compose: the global batch is shuffled across ranks
and each rank may split further. BN running statistics are then updated once per chunk (a DDP
run keeps rank 0's, updated once per step); they are only used at evaluation time.

Hooks for papers built on MoCo (asymsiam, taco)
----------------------------------------------
- :meth:`MoCoMethod.contrast` takes a *list* of query views (each encoded as its own batch,
  as the official asym-siam code does) and returns one logits tensor per view.
- The keys may be a list of views: they are encoded together (one shuffled batch), and the
  key of an image is the L2-normalised mean of its views' projections (asymsiam's MeanEnc).
- :meth:`MoCoMethod.contrast` can hand back the pooled backbone features of the query views
  (``query_features=[]``), and any encoder with a ``forward_features`` method that pools
  itself runs inside MoCo (:func:`~paperzoo.mocov2.model.resnet_pooled_features`): taco's
  video backbones and transformation-prediction heads.
- ``sync_key_head=True`` normalises the key projector's BatchNorm over the whole global batch
  (:class:`paperzoo.train.SyncBatchNorm` across processes; in one process, the projector sees
  all ``bn_splits`` groups at once) while the key backbone and the query encoder keep per-group
  BN: asymsiam's AsymBN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from torch import nn

from paperzoo.mocov2.model import MoCo, info_nce_logits, resnet_pooled_features
from paperzoo.train import distributed as dist_utils

__all__ = ["MoCoMethod", "batch_shuffle", "batch_unshuffle", "encode_in_chunks"]


def encode_in_chunks(
    encoder: nn.Module,
    x: torch.Tensor,
    chunks: int,
    *,
    whole_batch_head: bool = False,
    return_features: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``encoder`` on ``chunks`` equal consecutive slices of ``x``, concatenated.

    Each slice gets its own BatchNorm statistics, as if it were on its own GPU.
    ``whole_batch_head``: only the backbone runs per slice; the projector (``encoder.fc``) runs
    once on the pooled features of all slices, so its BN sees the whole batch (with
    :class:`paperzoo.train.SyncBatchNorm` inside, the whole global batch).
    (N, ...) -> (N, D); N must be divisible by ``chunks``. ``return_features=True`` also returns
    the pooled backbone features (N, F) that went into the projector (for heads of one's own
    on the same forward pass: paperzoo-taco's transformation heads); the projections are the
    same as without it.
    """
    if chunks > 1 and x.shape[0] % chunks:
        raise ValueError(
            f"batch of {x.shape[0]} cannot be split into {chunks} equal BN groups; make the "
            "per-process batch size a multiple of moco.bn_splits"
        )
    parts = x.chunk(chunks) if chunks > 1 else (x,)
    if whole_batch_head or return_features:
        pooled_parts = [resnet_pooled_features(encoder, c) for c in parts]
        pooled = torch.cat(pooled_parts, dim=0)
        if whole_batch_head:
            out = encoder.fc(pooled)
        else:  # the projector per slice too, as ``encoder(c)`` runs it
            out = torch.cat([encoder.fc(p) for p in pooled_parts], dim=0)
        return (out, pooled) if return_features else out
    if len(parts) == 1:
        return encoder(x)
    return torch.cat([encoder(c) for c in parts], dim=0)


@torch.no_grad()
def batch_shuffle(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The official cross-GPU batch shuffle (``_batch_shuffle_ddp``), also valid alone.

    Gathers ``x`` (B, ...) from every rank, draws one permutation of the B*W samples on rank 0
    (torch's global RNG on ``x.device``) and broadcasts it; returns this rank's B shuffled
    samples and the inverse permutation for :func:`batch_unshuffle`. Alone (W = 1) it returns
    a permutation of ``x`` itself.
    """
    x_all = dist_utils.all_gather(x)
    world = x_all.shape[0] // x.shape[0]
    idx_shuffle = torch.randperm(x_all.shape[0], device=x.device)
    if dist_utils.is_dist():
        torch_dist.broadcast(idx_shuffle, src=0)
    idx_unshuffle = torch.argsort(idx_shuffle)
    idx_this = idx_shuffle.view(world, -1)[dist_utils.get_rank()]
    return x_all[idx_this], idx_unshuffle


@torch.no_grad()
def batch_unshuffle(x: torch.Tensor, idx_unshuffle: torch.Tensor) -> torch.Tensor:
    """Undo :func:`batch_shuffle`: gather every rank's (B, ...) outputs and restore the order."""
    x_all = dist_utils.all_gather(x)
    world = x_all.shape[0] // x.shape[0]
    return x_all[idx_unshuffle.view(world, -1)[dist_utils.get_rank()]]


class MoCoMethod(nn.Module):
    """MoCo's training step, for :class:`paperzoo.train.Trainer`.

    Args:
        model: a :class:`~paperzoo.mocov2.model.MoCo` (encoders, head, queue).
        shuffle_bn: shuffle the key batch before the key encoder (official behaviour). Off,
            the keys are encoded in the same BN groups as the queries (the leaking setup, for
            ablations only).
        bn_splits: BN groups per process (the single-process shuffle-BN equivalent, see the
            module docstring). 1 under DDP reproduces the official per-GPU BN.
        sync_key_head: the key projector's BatchNorm layers become
            :class:`paperzoo.train.SyncBatchNorm` and see the whole global batch (asymsiam's
            AsymBN); the state-dict keys do not change.

    Batches are ``([im_q, im_k], labels)`` as ``TwoCropsTransform`` and the default collate
    give them: two (B, C, H, W) float views of the same images; labels are ignored.
    """

    def __init__(
        self,
        model: MoCo,
        *,
        shuffle_bn: bool = True,
        bn_splits: int = 1,
        sync_key_head: bool = False,
    ) -> None:
        super().__init__()
        if bn_splits < 1:
            raise ValueError(f"bn_splits must be >= 1, got {bn_splits}")
        self.model = model
        self.shuffle_bn = shuffle_bn
        self.bn_splits = bn_splits
        self.sync_key_head = sync_key_head
        if sync_key_head:
            from paperzoo.train.sync_bn import convert_sync_batchnorm

            model.encoder_k.fc = convert_sync_batchnorm(model.encoder_k.fc)

    def trainable_module(self) -> nn.Module:
        """The full MoCo module (query + key encoders and queue) is what gets saved."""
        return self.model

    def encode_queries(self, im_q: torch.Tensor) -> torch.Tensor:
        """L2-normalised queries (B, dim) of one view, in ``bn_splits`` BN groups."""
        return F.normalize(encode_in_chunks(self.model.encoder_q, im_q, self.bn_splits), dim=1)

    def encode_queries_with_features(self, im_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`encode_queries` and the pooled backbone features (B, F) of the same pass."""
        q, pooled = encode_in_chunks(
            self.model.encoder_q, im_q, self.bn_splits, return_features=True
        )
        return F.normalize(q, dim=1), pooled

    @torch.no_grad()
    def encode_keys(self, im_k: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """L2-normalised keys (B, dim) of the key encoder, with shuffle-BN when enabled.

        ``im_k`` is one (B, C, H, W) view or a list of V views of the same B images. The V*B
        images are encoded as one batch (shuffled together across processes, as the official
        asym-siam code does), and each image's key is the normalised mean of its V projections.
        """
        views = [im_k] if isinstance(im_k, torch.Tensor) else list(im_k)
        x = torch.cat(views, dim=0) if len(views) > 1 else views[0]
        if self.shuffle_bn:
            x, idx_unshuffle = batch_shuffle(x)
        k = encode_in_chunks(
            self.model.encoder_k, x, self.bn_splits, whole_batch_head=self.sync_key_head
        )
        if self.shuffle_bn:
            k = batch_unshuffle(k, idx_unshuffle)
        if len(views) > 1:
            k = k.view(len(views), -1, k.shape[1]).mean(dim=0)
        return F.normalize(k, dim=1)

    def contrast(
        self,
        queries: Sequence[torch.Tensor],
        keys: torch.Tensor | Sequence[torch.Tensor],
        *,
        query_features: list[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """InfoNCE logits (B, 1 + K) of every query view against one key per image.

        Each query view is encoded as its own batch. Side effects, in the official order: the
        key encoder takes its momentum step before encoding the keys, and the keys of every
        process are enqueued after the logits. Targets are all zeros. When a list is passed as
        ``query_features``, the pooled backbone features (B, F) of each query view are appended
        to it (same forward pass, gradients attached): heads of one's own train on them.
        """
        if query_features is None:
            qs = [self.encode_queries(im) for im in queries]
        else:
            qs = []
            for im in queries:
                q, pooled = self.encode_queries_with_features(im)
                qs.append(q)
                query_features.append(pooled)
        with torch.no_grad():
            self.model.momentum_update_key_encoder()
            k = self.encode_keys(keys)
        queue = self.model.queue.clone()  # the negatives of this step, before the enqueue
        logits = [info_nce_logits(q, k, queue, self.model.temperature) for q in qs]
        self.model.dequeue_and_enqueue(dist_utils.all_gather(k))
        return logits

    def forward(
        self, im_q: torch.Tensor, im_k: torch.Tensor | Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One MoCo step's logits (B, 1 + K) and targets (B,) (all zeros); updates the queue."""
        (logits,) = self.contrast([im_q], im_k)
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return logits, labels

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """InfoNCE loss and the (1 + K)-way instance-discrimination top-1 (percent)."""
        views, _ = batch
        im_q, im_k = views[0], views[1]
        logits, labels = self(im_q, im_k)
        loss = F.cross_entropy(logits, labels)
        with torch.no_grad():
            acc1 = (logits.argmax(dim=1) == labels).float().mean() * 100.0
        return {"loss": loss, "contrast_acc1": acc1}
