"""Supervised classification: the training objective and the test procedure of video papers.

What PySlowFast (github.com/facebookresearch/SlowFast, ``tools/train_net.py`` and
``tools/test_net.py``) does for SlowFast, X3D and MViT, and what every paperzoo video
classifier trains and tests with:

- :class:`Classification`, a paperzoo method: cross-entropy on hard labels with label
  smoothing, or on soft targets (``soft_cross_entropy``, PySlowFast's loss for Mixup/CutMix);
  normalisation parameters in their own optimizer group (``BN.WEIGHT_DECAY``,
  :func:`norm_param_groups`).
- :func:`precise_bn`: BatchNorm statistics re-estimated as exact averages over training
  batches before testing (``BN.USE_PRECISE_STATS``; ``torch.optim.swa_utils.update_bn`` does
  the averaging).
- :func:`evaluate_multiview`: each test video scored by the mean softmax of its views
  (``TEST.NUM_ENSEMBLE_VIEWS`` clips x ``TEST.NUM_SPATIAL_CROPS`` crops), views sharded over
  the processes of a torchrun job and the per-video sums all-reduced.
- :func:`evaluate`: single-view accuracy, with optional accuracies of label groupings (for
  example the motion direction part of a ``digit x direction`` label).

Any model ``(B, ...) -> (B, num_classes)`` and any dataset yielding ``(clip, label)`` or
``(clip, label, video_index)`` work; accuracies are percentages.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

__all__ = [
    "Classification",
    "evaluate",
    "evaluate_multiview",
    "norm_param_groups",
    "precise_bn",
    "soft_cross_entropy",
]

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def norm_param_groups(model: nn.Module, norm_weight_decay: float) -> list[dict[str, Any]]:
    """Two optimizer groups: the parameters of normalisation layers (BatchNorm, GroupNorm,
    LayerNorm) with ``weight_decay=norm_weight_decay``, and the rest (the optimizer's decay)."""
    norm_params, other = [], []
    for module in model.modules():
        is_norm = isinstance(module, _NORMS)
        for p in module.parameters(recurse=False):
            if p.requires_grad:
                (norm_params if is_norm else other).append(p)
    groups: list[dict[str, Any]] = [{"params": other}]
    if norm_params:
        groups.append({"params": norm_params, "weight_decay": norm_weight_decay})
    return groups


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum(targets * log_softmax(logits))``; targets (B, K) sum to 1."""
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()


class Classification(nn.Module):
    """A paperzoo method for a classifier ``model``: clips (B, C, T, H, W) (or images) -> logits.

    ``training_step((inputs, labels[, ...]), step)`` returns the loss and, for hard labels, the
    batch top-1 (a fraction). ``labels`` are int64 (B,) or soft targets (B, K), e.g. from a
    ``mixup(inputs, labels) -> (inputs, soft_targets)`` applied per batch when given (then
    ``label_smoothing`` is the mixup's business, not the loss's).

    ``norm_weight_decay``: when set, normalisation parameters get this weight decay
    (PySlowFast ``BN.WEIGHT_DECAY: 0.0``); None leaves every parameter to the optimizer config
    (whose ``exclude_bias_norm`` is PySlowFast's ``ZERO_WD_1D_PARAM``). ``channels_last``
    feeds Conv3d models in ``channels_last_3d`` memory format (oneDNN's CPU kernels for
    depthwise Conv3d train about 2x faster so).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        label_smoothing: float = 0.0,
        norm_weight_decay: float | None = None,
        mixup: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
        | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.model = model
        self.label_smoothing = label_smoothing
        self.norm_weight_decay = norm_weight_decay
        self.mixup = mixup
        self.memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        if channels_last:
            self.model.to(memory_format=self.memory_format)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.ndim == 5:
            inputs = inputs.contiguous(memory_format=self.memory_format)
        return self.model(inputs)

    def training_step(self, batch: Sequence[Any], step: int) -> dict[str, torch.Tensor]:
        inputs, labels = batch[0], batch[1]
        if self.mixup is not None:
            inputs, labels = self.mixup(inputs, labels)
        logits = self(inputs)
        if labels.ndim == 2:  # soft targets
            return {"loss": soft_cross_entropy(logits, labels)}
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        top1 = (logits.detach().argmax(dim=1) == labels).float().mean()
        return {"loss": loss, "top1": top1}

    def param_groups(self) -> list[dict[str, Any]]:
        if self.norm_weight_decay is None:
            return [{"params": [p for p in self.model.parameters() if p.requires_grad]}]
        return norm_param_groups(self.model, self.norm_weight_decay)

    def trainable_module(self) -> nn.Module:
        return self.model


def _device_of(model: nn.Module, device: Any) -> torch.device:
    if device is not None:
        return torch.device(device)
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def precise_bn(
    model: nn.Module,
    dataset: Dataset,
    *,
    num_batches: int,
    batch_size: int,
    device: Any = None,
    num_workers: int = 0,
    seed: int = 0,
) -> int:
    """Set every BatchNorm's running mean and variance to exact averages over ``num_batches``
    shuffled training batches (PySlowFast's precise BN); returns the batches used.

    The running statistics become the plain mean, over the batches, of each batch's mean and
    (unbiased) variance, as ``torch.optim.swa_utils.update_bn`` computes them. Items are
    ``(inputs, ...)``; ``model`` is called on ``inputs`` and is left in the mode it was in.
    ``num_batches <= 0`` does nothing.
    """
    if num_batches <= 0:
        return 0
    device = _device_of(model, device)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=num_workers,
        generator=generator,
    )  # fmt: skip
    if len(loader) == 0:
        raise ValueError(
            f"precise BN needs a full batch of {batch_size}, but the dataset has {len(dataset)} "  # type: ignore[arg-type]
            "items; lower the batch size or set the number of precise-BN batches to 0"
        )
    used = 0

    def inputs() -> Any:  # streamed: the batches are never all in memory
        nonlocal used
        for batch in itertools.islice(loader, num_batches):
            used += 1
            yield batch[0]

    torch.optim.swa_utils.update_bn(inputs(), model, device=device)
    return used


def _num_videos(dataset: Any, num_videos: int | None) -> int:
    if num_videos is not None:
        return num_videos
    for attr in ("num_videos", "records"):
        value = getattr(dataset, attr, None)
        if value is not None:
            return value if isinstance(value, int) else len(value)
    raise ValueError(
        f"evaluate_multiview cannot tell how many videos {type(dataset).__name__} holds: pass "
        "num_videos= (or give the dataset a num_videos or records attribute)"
    )


@torch.no_grad()
def evaluate_multiview(
    model: nn.Module,
    dataset: Any,
    *,
    num_classes: int,
    num_videos: int | None = None,
    batch_size: int = 8,
    device: Any = None,
    num_workers: int = 0,
) -> dict[str, float]:
    """Top-1/top-5 (%) over videos, each scored by the mean softmax of all its views.

    ``dataset`` yields ``(clip, label, video_index)`` for every view (ensemble clip x spatial
    crop); ``num_videos`` defaults to ``dataset.num_videos`` or ``len(dataset.records)``. Under
    torchrun each rank scores every ``world_size``-th view and the per-video sums are
    all-reduced, so every rank returns the same numbers. Also returns ``view_top1`` (% of
    single views right) and ``num_videos`` (videos that had at least one view).
    """
    from paperzoo.train import distributed as dist_utils

    device = _device_of(model, device)
    n_videos = _num_videos(dataset, num_videos)
    rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
    shard = Subset(dataset, range(rank, len(dataset), world))
    loader = DataLoader(shard, batch_size=batch_size, num_workers=num_workers)
    scores = torch.zeros(n_videos, num_classes, dtype=torch.float64, device=device)
    views = torch.zeros(n_videos, dtype=torch.float64, device=device)
    labels = torch.full((n_videos,), -1, dtype=torch.long, device=device)
    view_hits = torch.zeros(2, dtype=torch.float64, device=device)  # right single views, all
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            if len(batch) < 3:
                raise ValueError(
                    "evaluate_multiview needs items (clip, label, video_index); build the test "
                    "dataset with return_index=True"
                )
            clips, target, video = batch[0].to(device), batch[1].to(device), batch[2].to(device)
            probs = model(clips).double().softmax(dim=1)
            if probs.shape[1] != num_classes:
                raise ValueError(f"the model gives {probs.shape[1]} scores, not {num_classes}")
            scores.index_add_(0, video, probs)
            views.index_add_(0, video, torch.ones_like(video, dtype=torch.float64))
            labels[video] = target.long()
            view_hits[0] += (probs.argmax(1) == target).sum()
            view_hits[1] += len(target)
    finally:
        model.train(was_training)
    if dist_utils.is_dist():
        for tensor in (scores, views, view_hits):
            torch.distributed.all_reduce(tensor)
        torch.distributed.all_reduce(labels, op=torch.distributed.ReduceOp.MAX)
    seen = views > 0
    if not bool(seen.any()):
        raise ValueError("evaluate_multiview got an empty dataset")
    mean_probs = scores[seen] / views[seen, None]
    target = labels[seen]
    top5 = mean_probs.topk(min(5, num_classes), dim=1).indices
    return {
        "top1": 100.0 * (top5[:, 0] == target).double().mean().item(),
        "top5": 100.0 * (top5 == target[:, None]).any(dim=1).double().mean().item(),
        "view_top1": 100.0 * (view_hits[0] / view_hits[1]).item(),
        "num_videos": float(seen.sum().item()),
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = 64,
    device: Any = None,
    num_workers: int = 0,
    label_groups: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
) -> dict[str, float]:
    """Single-view accuracies (%) over ``dataset`` items ``(inputs, label[, ...])``.

    Returns ``top1``, ``top5`` and, for every ``name -> fn`` of ``label_groups``, ``name``: the
    % of items with ``fn(prediction) == fn(label)`` (``fn`` maps int64 class ids to group ids,
    e.g. ``lambda y: y % 4`` for the direction of a digit x direction class).
    """
    device = _device_of(model, device)
    was_training = model.training
    model.eval()
    groups = dict(label_groups or {})
    hits = dict.fromkeys(["top1", "top5", *groups], 0)
    total = 0
    try:
        for batch in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
            logits = model(batch[0].to(device)).float().cpu()
            labels = torch.as_tensor(batch[1]).long()
            top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
            pred = top5[:, 0]
            hits["top1"] += int((pred == labels).sum())
            hits["top5"] += int((top5 == labels[:, None]).any(dim=1).sum())
            for name, fn in groups.items():
                hits[name] += int((fn(pred) == fn(labels)).sum())
            total += len(labels)
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("evaluate got an empty dataset")
    return {name: 100.0 * count / total for name, count in hits.items()}
