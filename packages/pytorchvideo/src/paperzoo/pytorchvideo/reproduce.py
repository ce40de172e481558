"""Runners of the X3D recipes (configs in :mod:`paperzoo.pytorchvideo.recipes`).

``run(cfg, ctx)`` trains with :class:`paperzoo.train.Trainer` and tests with the multi-view
protocol of PySlowFast: each test video gives ``num_ensemble_views`` clips x
``num_spatial_crops`` crops, whose softmax scores are averaged before top-1/top-5. Before
testing, BatchNorm statistics are re-estimated on training clips ("precise BN").

- ``data.dataset == "kinetics"``: ``data.root`` holds ``train.csv`` and ``val.csv``
  (Kinetics-style lists; paths relative to the list's folder).
- ``data.dataset == "moving_digits"`` (tiny): the videos are written into
  ``OUT/moving_digits`` first; X3D and, with ``moving_digits.baseline``, the frame-averaged 2D
  baseline (in ``OUT/baseline_2d``) train with the same budget.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from paperzoo.core.run import RunContext, RunResult
from paperzoo.pytorchvideo.method import VideoClassification, x3d_xs_2d
from paperzoo.pytorchvideo.recipes import X3DRecipeConfig

__all__ = ["build_model", "evaluate_multiview", "precise_bn", "run"]


def build_model(cfg: X3DRecipeConfig, *, crop_size: int | None = None) -> nn.Module:
    """The recipe's model, its head pooling sized for the training clip."""
    from paperzoo.pytorchvideo import efficient_x3d, x3d

    name = cfg.x3d.model
    if name.startswith("efficient_"):
        return getattr(efficient_x3d, name)(
            num_classes=cfg.x3d.num_classes, dropout=cfg.x3d.dropout
        )
    return getattr(x3d, name)(
        num_classes=cfg.x3d.num_classes,
        input_clip_length=cfg.video.num_frames,
        input_crop_size=crop_size or cfg.video.train_crop_size,
        dropout_rate=cfg.x3d.dropout,
        zero_init_final_norm=cfg.x3d.zero_init_final_norm,
    )


# -- data ------------------------------------------------------------------------------------


def _clip_seconds(cfg: X3DRecipeConfig) -> float:
    if cfg.data.dataset == "moving_digits":
        return cfg.moving_digits.clip_seconds
    return cfg.video.num_frames * cfg.video.sampling_rate / cfg.video.fps


def _kinetics_lists(root: str) -> tuple[Path, Path]:
    if not root:
        raise FileNotFoundError(
            "the X3D paper recipe needs Kinetics-400: pass --data DIR (or --set data.root=DIR), "
            "where DIR holds train.csv and val.csv, Kinetics-style lists of 'path label' or "
            "'path,start,end,label' lines with paths relative to DIR"
        )
    base = Path(root)
    lists = (base / "train.csv", base / "val.csv")
    missing = [str(p) for p in lists if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Kinetics lists not found: {', '.join(missing)}; data.root={root!r} must hold "
            "train.csv and val.csv ('path label' per line)"
        )
    return lists


def _moving_digits_lists(cfg: X3DRecipeConfig, ctx: RunContext) -> tuple[Path, Path]:
    from paperzoo.data.synthetic import write_moving_digits
    from paperzoo.train import distributed as dist_utils

    md = cfg.moving_digits
    root = Path(cfg.data.root) if cfg.data.root else ctx.out_dir / "moving_digits"
    train_csv = root / "train.csv"
    if dist_utils.is_main() and not (root / "meta.json").is_file():
        write_moving_digits(
            root,
            num_videos_per_class=md.num_videos_per_class,
            num_directions=md.num_directions,
            digits=tuple(md.digits),
            num_frames=md.num_frames,
            size=md.size,
            speed=md.speed,
            val_fraction=md.val_fraction,
            seed=md.data_seed,
        )
    dist_utils.barrier()
    return train_csv, root / "val.csv"


def build_datasets(cfg: X3DRecipeConfig, ctx: RunContext) -> tuple[Dataset, Dataset]:
    """(train, test) datasets; the test one yields ``(clip, label, video_index)`` per view."""
    from torchvision.transforms import v2

    from paperzoo.data.datasets import LabeledVideoDataset
    from paperzoo.data.samplers import ConstantClipsPerVideoSampler, RandomClipSampler
    from paperzoo.data.transforms import (
        Normalize,
        ToLayout,
        video_eval_transform,
        video_train_transform,
    )

    v = cfg.video
    seconds = _clip_seconds(cfg)
    if cfg.data.dataset == "kinetics":
        train_csv, val_csv = _kinetics_lists(cfg.data.root)
        train_tf = video_train_transform(
            v.num_frames, v.train_crop_size, *v.train_jitter_scales, mean=v.mean, std=v.std
        )
        test_tf = video_eval_transform(
            v.num_frames, v.test_crop_size, v.test_short_side, mean=v.mean, std=v.std,
            center_crop=v.num_spatial_crops == 1,
        )  # fmt: skip
    elif cfg.data.dataset == "moving_digits":
        train_csv, val_csv = _moving_digits_lists(cfg, ctx)
        # No spatial augmentation: a flip would turn "left" into "right".
        train_tf = test_tf = v2.Compose(
            [
                v2.ToDtype(torch.float32, scale=True),
                Normalize(v.mean, v.std, layout="TCHW"),
                ToLayout("TCHW", "CTHW"),
            ]
        )
    else:
        raise ValueError(
            f"unknown data.dataset {cfg.data.dataset!r}; use 'kinetics' (with --data DIR) or "
            "'moving_digits'"
        )
    train = LabeledVideoDataset.from_csv(
        train_csv,
        clip_sampler=RandomClipSampler(seconds),
        num_frames=v.num_frames,
        transform=train_tf,
        max_bad_fraction=v.max_bad_fraction,
    )
    test = LabeledVideoDataset.from_csv(
        val_csv,
        clip_sampler=ConstantClipsPerVideoSampler(seconds, v.num_ensemble_views),
        num_frames=v.num_frames,
        transform=test_tf,
        num_crops=v.num_spatial_crops,
        crop_size=v.test_crop_size if v.num_spatial_crops > 1 else None,
        max_bad_fraction=v.max_bad_fraction,
        return_index=True,
    )
    return train, test


# -- evaluation ------------------------------------------------------------------------------


@torch.no_grad()
def precise_bn(
    model: nn.Module, dataset: Dataset, *, num_batches: int, batch_size: int, device: Any
) -> None:
    """Re-estimate BatchNorm running statistics as exact averages over ``num_batches``
    training batches (PySlowFast's precise BN; torch's ``update_bn`` does the averaging)."""
    if num_batches <= 0:
        return
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    batches = ((clips.to(device),) for clips, *_ in itertools.islice(loader, num_batches))
    torch.optim.swa_utils.update_bn(batches, model)


@torch.no_grad()
def evaluate_multiview(
    model: nn.Module,
    dataset: Dataset,
    *,
    num_classes: int,
    batch_size: int = 8,
    num_workers: int = 0,
    device: Any = "cpu",
) -> dict[str, float]:
    """Top-1/top-5 (in [0, 1]) of view-averaged softmax scores per video, plus single-view top-1.

    ``dataset`` yields ``(clip, label, video_index)``. Under torchrun every rank scores a
    shard of the views and the per-video sums are all-reduced.
    """
    from paperzoo.train import distributed as dist_utils

    rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
    shard = Subset(dataset, range(rank, len(dataset), world))
    loader = DataLoader(shard, batch_size=batch_size, num_workers=num_workers)
    num_videos = len(dataset.records)  # type: ignore[attr-defined]
    scores = torch.zeros(num_videos, num_classes, dtype=torch.float64)
    labels = torch.full((num_videos,), -1, dtype=torch.float64)
    view_hits = torch.zeros(2, dtype=torch.float64)  # correct single views, views seen
    was_training = model.training
    model.eval()
    for clips, target, index in loader:
        probs = model(clips.to(device)).float().softmax(dim=1).cpu().double()
        scores.index_add_(0, index, probs)
        labels[index] = target.double()
        view_hits += torch.tensor([(probs.argmax(1) == target).sum().item(), len(target)])
    model.train(was_training)
    # Sums over ranks (labels: every rank writes the same value or -1; take the max).
    scores = dist_utils.all_reduce_mean(scores.to(device)).cpu() * world
    view_hits = dist_utils.all_reduce_mean(view_hits.to(device)).cpu() * world
    if world > 1:
        torch.distributed.all_reduce(lab := labels.to(device), op=torch.distributed.ReduceOp.MAX)
        labels = lab.cpu()
    seen = labels >= 0
    target = labels[seen].long()
    top5 = scores[seen].topk(min(5, num_classes), dim=1).indices
    return {
        "top1": (top5[:, 0] == target).double().mean().item(),
        "top5": (top5 == target[:, None]).any(dim=1).double().mean().item(),
        "view_top1": (view_hits[0] / view_hits[1].clamp(min=1)).item(),
        "num_videos": float(seen.sum().item()),
    }


# -- running ---------------------------------------------------------------------------------


def _train_and_test(
    model: nn.Module, cfg: X3DRecipeConfig, ctx: RunContext, train: Dataset, test: Dataset
) -> tuple[dict[str, float], int]:
    from paperzoo.train import Trainer

    method = VideoClassification(
        model,
        label_smoothing=cfg.x3d.label_smoothing,
        norm_weight_decay=cfg.x3d.norm_weight_decay,
        channels_last=cfg.x3d.channels_last,
    )
    batch = cfg.data.batch_size or max(1, cfg.global_batch_size // ctx.world_size)
    trainer = Trainer(
        method, train, ctx, cfg.trainer, cfg.optim,
        batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed,
    )  # fmt: skip
    state = trainer.fit()
    net = trainer.model  # the VideoClassification method: forward(clips) -> logits
    precise_bn(
        net,
        train,
        num_batches=cfg.video.precise_bn_batches,
        batch_size=batch,
        device=trainer.device,
    )
    metrics = evaluate_multiview(
        net, test, num_classes=cfg.x3d.num_classes, batch_size=cfg.video.eval_batch_size,
        num_workers=cfg.data.num_workers, device=trainer.device,
    )  # fmt: skip
    return metrics, state.step


def run(cfg: X3DRecipeConfig, ctx: RunContext) -> RunResult:
    """Train X3D (and, tiny, the 2D baseline) and test it; metrics are fractions in [0, 1]."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    train, test = build_datasets(cfg, ctx)
    classes = getattr(train, "classes", None)
    if classes is not None and len(classes) > cfg.x3d.num_classes:
        raise ValueError(
            f"the train list has {len(classes)} classes but x3d.num_classes={cfg.x3d.num_classes}; "
            f"set --set x3d.num_classes={len(classes)}"
        )
    model = build_model(cfg)
    metrics, steps = _train_and_test(model, cfg, ctx, train, test)
    result = {f"{k}": v for k, v in metrics.items() if k != "num_videos"}
    extra: dict[str, Any] = {"num_test_videos": int(metrics["num_videos"]), "model": cfg.x3d.model}
    if cfg.data.dataset == "moving_digits":
        md = cfg.moving_digits
        result["chance_top1"] = 1.0 / cfg.x3d.num_classes
        # A model that reads the digit perfectly but cannot see motion guesses the direction.
        result["frame_only_ceiling_top1"] = 1.0 / md.num_directions
        if md.baseline:
            base_ctx = dataclasses.replace(ctx, out_dir=ctx.out_dir / "baseline_2d")
            base_ctx.out_dir.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(cfg.seed)
            baseline = x3d_xs_2d(
                cfg.x3d.num_classes, cfg.video.train_crop_size, dropout_rate=cfg.x3d.dropout,
                zero_init_final_norm=cfg.x3d.zero_init_final_norm,
            )  # fmt: skip
            base_metrics, _ = _train_and_test(baseline, cfg, base_ctx, train, test)
            result["baseline_2d_top1"] = base_metrics["top1"]
            result["baseline_2d_top5"] = base_metrics["top5"]
            extra["baseline_2d_params"] = sum(p.numel() for p in baseline.parameters())
        extra["x3d_params"] = sum(p.numel() for p in model.parameters())
    if not all(math.isfinite(v) for v in result.values()):
        raise FloatingPointError(f"non-finite metrics: {result}")
    return RunResult(metrics=result, steps=steps, extra=extra)
