"""HiT's training objective: hierarchical cross-modal contrast, in-batch or against the queues.

For each level in ``levels`` (``"feature"``, ``"semantic"``) and each direction:

- momentum (HiT): query video vs [key text of its pair, the text queue of that level], and
  query text vs [key video, the video queue], MoCo's InfoNCE with the positive first
  (:func:`paperzoo.mocov2.model.info_nce_logits`); the key copies follow the query towers by
  momentum after every optimizer step, and every level's keys are enqueued after the loss;
- in-batch (the ablation arms): query video vs the query texts of the (global) batch and the
  reverse, the usual symmetric cross-modal InfoNCE; no key copy and no queue is used.

The loss is the sum over levels of the mean of the two directions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.hit.model import LEVELS, HiT
from paperzoo.mocov2.model import info_nce_logits
from paperzoo.train import distributed as dist_utils

__all__ = ["HiTMethod", "hierarchical_loss", "in_batch_logits"]

Embeddings = Mapping[str, Mapping[str, torch.Tensor]]


def in_batch_logits(q: torch.Tensor, candidates: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N, M) logits of queries ``q`` (N, C) against ``candidates`` (M, C), both normalised."""
    return q @ candidates.T / temperature


def hierarchical_loss(
    query: Embeddings,
    keys: Embeddings | None = None,
    queues: Mapping[str, torch.Tensor] | None = None,
    *,
    levels: Sequence[str] = LEVELS,
    temperature: float = 0.07,
) -> dict[str, torch.Tensor]:
    """The HiT loss and its parts.

    Args:
        query: ``{"video": {level: (N, C)}, "text": {...}}`` of the query towers.
        keys: the key copies' embeddings, same layout (momentum mode), or None (in-batch).
        queues: ``{f"{level}_{modality}": (C, K)}`` (momentum mode).
        levels: which levels are contrasted.
    Returns:
        ``loss`` and ``{level}_v2t`` / ``{level}_t2v`` (each a cross-entropy).
    In-batch mode gathers the candidates of every process with gradient
    (:func:`paperzoo.train.distributed.all_gather_with_grad`); the targets are this rank's rows.
    """
    if not levels:
        raise ValueError("hierarchical_loss needs at least one level (feature, semantic)")
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise ValueError(f"unknown level(s) {sorted(unknown)}; expected some of {LEVELS}")
    if (keys is None) != (queues is None):
        raise ValueError("momentum mode needs both keys and queues; in-batch mode neither")
    out: dict[str, torch.Tensor] = {}
    total = 0.0
    for lvl in levels:
        qv, qt = query["video"][lvl], query["text"][lvl]
        n = qv.shape[0]
        if keys is not None and queues is not None:
            v2t = info_nce_logits(qv, keys["text"][lvl], queues[f"{lvl}_text"], temperature)
            t2v = info_nce_logits(qt, keys["video"][lvl], queues[f"{lvl}_video"], temperature)
            target = torch.zeros(n, dtype=torch.long, device=qv.device)
        else:
            all_t, all_v = dist_utils.all_gather_with_grad(qt), dist_utils.all_gather_with_grad(qv)
            v2t = in_batch_logits(qv, all_t, temperature)
            t2v = in_batch_logits(qt, all_v, temperature)
            offset = dist_utils.get_rank() * n if dist_utils.is_dist() else 0
            target = torch.arange(n, device=qv.device) + offset
        out[f"{lvl}_v2t"] = F.cross_entropy(v2t, target)
        out[f"{lvl}_t2v"] = F.cross_entropy(t2v, target)
        total = total + (out[f"{lvl}_v2t"] + out[f"{lvl}_t2v"]) / 2
    out["loss"] = total  # type: ignore[assignment]
    return out


@torch.no_grad()
def _batch_false_negative(labels: torch.Tensor) -> torch.Tensor:
    """Fraction of in-batch negatives (off-diagonal pairs) that share their query's class."""
    n = labels.numel()
    if n < 2 or (labels < 0).all():
        return torch.zeros(())
    same = (labels[:, None] == labels[None, :]).float()
    return (same.sum() - n) / (n * (n - 1))


class HiTMethod(nn.Module):
    """The Trainer's method around :class:`~paperzoo.hit.model.HiT`.

    ``text_lr_scale`` scales the text encoder's learning rate (:meth:`param_groups`).
    Batches are ``(clips, input_ids, attention_mask, labels)``; ``labels`` (N,) are classes
    (or video ids, -1 unknown), used only to report ``queue_false_negative``: the fraction of
    the semantic text queue's entries that share the query video's class before this step's
    keys are written (a false negative is a "negative" that matches the query).
    """

    def __init__(
        self,
        model: HiT,
        *,
        levels: Sequence[str] = LEVELS,
        momentum_queues: bool = True,
        text_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.text_lr_scale = text_lr_scale
        self.model = model
        self.levels = tuple(levels)
        self.momentum_queues = momentum_queues

    def trainable_module(self) -> nn.Module:
        return self.model

    def param_groups(self) -> list[dict]:
        """The BERT encoder at ``text_lr_scale`` x the recipe's lr (a post-LN BERT collapses
        at the lr a small video transformer needs); everything else at the lr itself."""
        text = list(self.model.text_q.encoder.parameters())
        ids = {id(p) for p in text}
        rest = [p for p in self.model.parameters() if id(p) not in ids]
        return [{"params": rest}, {"params": text, "lr_scale": self.text_lr_scale}]

    def training_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        clips, ids, mask, labels = batch
        query = self.model(clips, ids, mask)
        if not self.momentum_queues:
            out = hierarchical_loss(query, levels=self.levels, temperature=self.model.temperature)
            out["batch_false_negative"] = _batch_false_negative(dist_utils.all_gather(labels))
            return out
        keys = self.model.keys(clips, ids, mask)
        queues = {name: q.queue.clone() for name, q in self.model.queues.items()}
        out = hierarchical_loss(
            query, keys, queues, levels=self.levels, temperature=self.model.temperature
        )
        all_labels = dist_utils.all_gather(labels)
        out["queue_false_negative"] = self.model.queues["semantic_text"].false_negative_rate(
            all_labels
        )
        gathered = {
            mod: {lvl: dist_utils.all_gather(v.contiguous()) for lvl, v in emb.items()}
            for mod, emb in keys.items()
        }
        self.model.enqueue(gathered, all_labels)
        return out

    def on_after_optimizer_step(self, step: int) -> None:
        if self.momentum_queues:
            self.model.momentum_update_key_encoders()
