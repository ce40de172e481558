"""Runners of the SlowFast recipes (configs in :mod:`paperzoo.slowfast.recipes`).

``run(cfg, ctx)`` trains with :class:`paperzoo.train.Trainer` and tests.

- ``data.dataset == "kinetics"`` (paper): ``data.root`` holds ``train.csv`` and ``val.csv``
  (Kinetics-style lists, paths relative to the list's folder). Training clips are random
  windows of ``num_frames * sampling_rate / fps`` seconds, jittered, cropped and flipped.
  Before testing, BatchNorm statistics are re-estimated on training clips (precise BN); each
  test video then gives ``num_ensemble_views`` clips x ``num_spatial_crops`` crops whose
  softmax scores are averaged (PySlowFast's multi-view test).
- ``data.dataset == "moving_digits"`` (tiny): one cell of the study
  :func:`paperzoo.slowfast.recipes.tiny_study` (one model, one seed). The videos are written
  once into the study's shared folder (``OUT/_shared/moving_digits``; ``OUT/moving_digits``
  for a plain run) and decoded once; the model trains on train, and reports val accuracies
  (for choices) and test accuracies (the claim's numbers). No flips: they would swap the
  left/right classes.

The training and test procedure (classification method, precise BN, multi-view testing) is
the shared one of :mod:`paperzoo.train.classification`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from paperzoo.core.run import RunContext, RunResult
from paperzoo.slowfast import model as models
from paperzoo.slowfast.recipes import SlowFastRecipeConfig

__all__ = ["build_model", "run"]


def build_model(name: str, cfg: SlowFastRecipeConfig, num_classes: int) -> nn.Module:
    """The recipe's model; for the basic head, its pooling window fits the training clip."""
    factory = getattr(models, name, None)
    if factory is None or name.startswith("create_") or not callable(factory):
        known = [n for n in models.__all__ if n.startswith(("slow", "slowfast"))]
        raise ValueError(f"unknown SlowFast model {name!r}; known: {', '.join(known)}")
    kwargs: dict[str, Any] = dict(
        num_classes=num_classes,
        dropout_rate=cfg.slowfast.dropout,
        zero_init_final_norm=cfg.slowfast.zero_init_final_norm,
    )
    if not name.endswith(("_tiny", "_detection")):
        with torch.device("meta"):  # structure only: alpha and the number of pathways
            probe = factory(num_classes=1, head=None)
        side = cfg.video.train_crop_size // 32
        frames = cfg.video.num_frames
        if probe.num_pathways == 2:
            kwargs["head_pool_kernel_sizes"] = (
                (frames // probe.alpha, side, side),
                (frames, side, side),
            )
        else:
            kwargs["head_pool_kernel_size"] = (frames, side, side)
    return factory(**kwargs)


# -- data ----------------------------------------------------------------------------------------


def _moving_digits_splits(cfg: SlowFastRecipeConfig, ctx: RunContext) -> dict[str, Dataset]:
    from paperzoo.data.synthetic import moving_digits_splits

    root = (
        Path(cfg.data.root) if cfg.data.root else (ctx.shared_dir or ctx.out_dir) / "moving_digits"
    )
    return moving_digits_splits(
        root,
        ("train", "val", "test"),
        mean=cfg.video.mean,
        std=cfg.video.std,
        **cfg.moving_digits.write_kwargs(),
    )


# -- running -------------------------------------------------------------------------------------


def _batch_size(cfg: SlowFastRecipeConfig, ctx: RunContext) -> int:
    if cfg.data.batch_size > 0:
        return cfg.data.batch_size
    return max(1, cfg.global_batch_size // ctx.world_size)


def _train(
    name: str,
    cfg: SlowFastRecipeConfig,
    ctx: RunContext,
    train: Dataset,
    num_classes: int,
    seed: int,
) -> tuple[nn.Module, int]:
    from paperzoo.train import Trainer
    from paperzoo.train.classification import Classification

    torch.manual_seed(seed)  # the model's initial weights follow the run's seed
    method = Classification(
        build_model(name, cfg, num_classes),
        label_smoothing=cfg.slowfast.label_smoothing,
        norm_weight_decay=cfg.slowfast.norm_weight_decay,
    )
    trainer = Trainer(
        method,
        train,
        ctx,
        cfg.trainer,
        cfg.optim,
        batch_size=_batch_size(cfg, ctx),
        num_workers=cfg.data.num_workers,
        seed=seed,
    )
    state = trainer.fit()
    return trainer.model.model, state.step


def _run_tiny(cfg: SlowFastRecipeConfig, ctx: RunContext) -> RunResult:
    from paperzoo.train.classification import evaluate

    data = _moving_digits_splits(cfg, ctx)
    md = cfg.moving_digits
    num_classes = cfg.slowfast.num_classes or len(md.digits) * md.num_directions
    net, steps = _train(cfg.slowfast.model, cfg, ctx, data["train"], num_classes, cfg.seed)
    groups = {
        "direction_acc": lambda y: y % md.num_directions,
        "digit_acc": lambda y: y // md.num_directions,
    }
    metrics: dict[str, float] = {}
    for split, prefix in (("val", "val_"), ("test", "")):
        result = evaluate(
            net, data[split], batch_size=cfg.video.eval_batch_size, label_groups=groups
        )
        metrics.update({f"{prefix}{k}": v for k, v in result.items() if k != "top5"})
    extra = {
        "model": cfg.slowfast.model,
        "params": sum(p.numel() for p in net.parameters()),
        "num_videos": {s: len(d) for s, d in data.items()},
        "chance_direction_acc": 100.0 / md.num_directions,
    }
    return RunResult(metrics=metrics, steps=steps, extra=extra)


def _run_kinetics(cfg: SlowFastRecipeConfig, ctx: RunContext) -> RunResult:
    from paperzoo.data.datasets import kinetics_clip_datasets
    from paperzoo.train.classification import evaluate_multiview, precise_bn

    train, test = kinetics_clip_datasets(
        cfg.data.root, cfg.video, recipe="the SlowFast paper recipe"
    )
    num_classes = cfg.slowfast.num_classes or len(train.classes or ()) or 400
    net, steps = _train(cfg.slowfast.model, cfg, ctx, train, num_classes, cfg.seed)
    device = next(net.parameters()).device
    precise_bn(
        net,
        train,
        num_batches=cfg.video.precise_bn_batches,
        batch_size=_batch_size(cfg, ctx),
        device=device,
    )
    metrics = evaluate_multiview(
        net,
        test,
        num_videos=len(test.records),
        num_classes=num_classes,
        batch_size=cfg.video.eval_batch_size,
        device=device,
        num_workers=cfg.data.num_workers,
    )
    views = cfg.video.num_ensemble_views * cfg.video.num_spatial_crops
    return RunResult(metrics=metrics, steps=steps, extra={"views_per_video": views})


def run(cfg: SlowFastRecipeConfig, ctx: RunContext) -> RunResult:
    """Run a SlowFast recipe (see the module docstring)."""
    if cfg.data.dataset == "moving_digits":
        return _run_tiny(cfg, ctx)
    if cfg.data.dataset == "kinetics":
        return _run_kinetics(cfg, ctx)
    raise ValueError(
        f"data.dataset must be 'kinetics' or 'moving_digits', got {cfg.data.dataset!r}"
    )
