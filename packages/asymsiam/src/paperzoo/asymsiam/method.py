"""The asymsiam training step on paperzoo-mocov2's MoCo method, and the variance it studies.

The step is :class:`paperzoo.mocov2.method.MoCoMethod` (momentum update, shuffle-BN, InfoNCE,
queue), reused through its hooks, with the official ``main_moco.py`` loss:

    loss = CE(logits of the 224 source view) + mean over the small crops of CE(their logits)

(the second term only with MultiCrop). The target key is the normalised mean of the target
views' projections (MeanEnc with 2 views), and ``sync_key_head`` (AsymBN) normalises the
target projector's BN over the whole batch while the source keeps per-GPU BN.

Variance. The paper's insight is that a target with lower variance than its source helps. We
measure the *intra-image* variance of the L2-normalised encodings (128-d): for every held-out
image, ``draws`` independent draws of the design's views are encoded exactly as training does
(BN in training mode with the training batch size and BN groups, shuffle-BN, MeanEnc averaging,
AsymBN's synchronised target BN), and the variance is the mean squared distance of the image's
encodings to their mean, averaged over images. Source encodings are all source views (with
MultiCrop, the small crops too); target encodings are the keys. This definition is ours: the
paper's exact measurement protocol could not be read here (see the README).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from paperzoo.mocov2.method import MoCoMethod

__all__ = ["AsymSiamMethod", "intra_image_variance"]


def _views(batch_views: Any) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    if not isinstance(batch_views, dict) or "source" not in batch_views:
        raise TypeError(
            "asymsiam batches are ({'source': [...], 'source_small': [...], 'target': [...]}, "
            f"labels) as paperzoo.asymsiam.data.AsymCrops gives them; got {type(batch_views)}"
        )
    return (
        list(batch_views["source"]),
        list(batch_views.get("source_small", [])),
        list(batch_views["target"]),
    )


class AsymSiamMethod(MoCoMethod):
    """MoCo's step over the asymsiam views (see the module docstring).

    Args as :class:`~paperzoo.mocov2.method.MoCoMethod`; ``sync_key_head=True`` is AsymBN.
    """

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """The official loss and the (1 + K)-way top-1 of the 224 source view (percent)."""
        views, _ = batch
        sources, small, targets = _views(views)
        logits = self.contrast(sources + small, targets)
        labels = torch.zeros(logits[0].shape[0], dtype=torch.long, device=logits[0].device)
        loss = F.cross_entropy(logits[0], labels)
        out: dict[str, torch.Tensor] = {}
        if len(logits) > 1:
            small_loss = torch.stack([F.cross_entropy(lg, labels) for lg in logits[1:]]).mean()
            loss = loss + small_loss
            out["small_crop_loss"] = small_loss.detach()
        with torch.no_grad():
            acc1 = (logits[0].argmax(dim=1) == labels).float().mean() * 100.0
        return {"loss": loss, "contrast_acc1": acc1, **out}


def _spread(encodings: list[torch.Tensor]) -> torch.Tensor:
    """Per-image mean squared distance to the image's mean encoding: [(B, D)] * V -> (B,)."""
    z = torch.stack(encodings)  # (V, B, D)
    return (z - z.mean(dim=0, keepdim=True)).pow(2).sum(dim=-1).mean(dim=0)


@torch.no_grad()
def intra_image_variance(
    method: MoCoMethod,
    dataset: Any,
    *,
    batch_size: int,
    draws: int = 4,
    max_images: int = 512,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Intra-image variance of source and target encodings on ``dataset`` (module docstring).

    ``dataset`` yields ``(views dict, label)`` as :class:`~paperzoo.asymsiam.data.AsymCrops`
    gives them (the held-out images through the design's views). The method is copied first,
    so the trained one's BN statistics, queue and key encoder do not move. Returns
    ``{"source_variance", "target_variance", "variance_ratio"}`` (source / target).
    """
    if draws < 2:
        raise ValueError(f"variance needs at least 2 draws per image, got {draws}")
    probe = copy.deepcopy(method).to(device).train()
    n = min(len(dataset), max_images) // batch_size * batch_size
    if n == 0:
        raise ValueError(f"{len(dataset)} held-out images is fewer than one batch of {batch_size}")
    subset = torch.utils.data.Subset(dataset, range(n))
    src_sum = tgt_sum = 0.0
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(0)  # the same draws for every design and seed
    try:
        for start in range(0, n, batch_size):
            index = range(start, start + batch_size)
            per_draw_src: list[list[torch.Tensor]] = []
            per_draw_tgt: list[torch.Tensor] = []
            for _ in range(draws):
                views = torch.utils.data.default_collate([subset[i][0] for i in index])
                sources, small, targets = _views(views)
                per_draw_src.append([probe.encode_queries(v.to(device)) for v in sources + small])
                per_draw_tgt.append(probe.encode_keys([v.to(device) for v in targets]))
            # Every source view of every draw is a sample of the source encoding.
            src_sum += float(_spread([z for draw in per_draw_src for z in draw]).sum())
            tgt_sum += float(_spread(per_draw_tgt).sum())
    finally:
        torch.random.set_rng_state(gen_state)
    source, target = src_sum / n, tgt_sum / n
    return {
        "source_variance": source,
        "target_variance": target,
        "variance_ratio": source / target if target > 0 else float("inf"),
    }
