"""Runners of the X3D recipes (configs in :mod:`paperzoo.pytorchvideo.recipes`).

``run(cfg, ctx)`` trains with :class:`paperzoo.train.Trainer` and tests with the multi-view
protocol of PySlowFast: each test video gives ``num_ensemble_views`` clips x
``num_spatial_crops`` crops, whose softmax scores are averaged before top-1/top-5. Before
testing, BatchNorm statistics are re-estimated on training clips ("precise BN").

- ``data.dataset == "kinetics"``: ``data.root`` holds ``train.csv`` and ``val.csv``
  (Kinetics-style lists; paths relative to the list's folder).
- ``data.dataset == "moving_digits"`` (tiny): one cell of the study
  :func:`paperzoo.pytorchvideo.recipes.tiny_study`: X3D-XS, or with
  ``x3d.frame_averaged_2d`` the frame-averaged 2D baseline, with one seed. The videos are
  written once into the study's shared folder (``OUT/_shared/moving_digits``;
  ``OUT/moving_digits`` for a plain run) and decoded once into memory; training clips are
  random windows, val (for choices) and test (the reported number) use the same multi-view
  protocol. Metrics are percentages.

Training and testing are the shared :mod:`paperzoo.train.classification`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from paperzoo.core.run import RunContext, RunResult
from paperzoo.pytorchvideo.method import x3d_xs_2d
from paperzoo.pytorchvideo.recipes import X3DRecipeConfig

__all__ = ["build_datasets", "build_model", "run"]


def build_model(cfg: X3DRecipeConfig, *, crop_size: int | None = None) -> nn.Module:
    """The recipe's model, its head pooling sized for the training clip (with
    ``x3d.frame_averaged_2d``: the tiny recipe's 2D baseline)."""
    from paperzoo.pytorchvideo import efficient_x3d, x3d

    name = cfg.x3d.model
    if cfg.x3d.frame_averaged_2d:
        if name != "x3d_xs":
            raise ValueError(f"the frame-averaged 2D baseline is X3D-XS's, not {name!r}")
        return x3d_xs_2d(
            cfg.x3d.num_classes, crop_size or cfg.video.train_crop_size,
            dropout_rate=cfg.x3d.dropout, zero_init_final_norm=cfg.x3d.zero_init_final_norm,
        )  # fmt: skip
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


def _moving_digits(cfg: X3DRecipeConfig, ctx: RunContext) -> dict[str, Dataset]:
    """Train clips: ``num_frames`` frames every ``sampling_rate`` from a random start; val and
    test: ``num_ensemble_views`` evenly spaced clips per video, ``(clip, label, video)``."""
    from paperzoo.data.synthetic import moving_digits_splits

    md, v = cfg.moving_digits, cfg.video
    root = (
        Path(cfg.data.root) if cfg.data.root else (ctx.shared_dir or ctx.out_dir) / "moving_digits"
    )
    splits = moving_digits_splits(
        root, ("train", "val", "test"), mean=v.mean, std=v.std, **md.write_kwargs()
    )
    clip = dict(num_frames=v.num_frames, stride=v.sampling_rate)
    return {
        "train": splits["train"].sampled(**clip, random_start=True),
        "val": splits["val"].sampled(**clip, num_views=v.num_ensemble_views),
        "test": splits["test"].sampled(**clip, num_views=v.num_ensemble_views),
    }


def build_datasets(cfg: X3DRecipeConfig) -> tuple[Dataset, Dataset]:
    """(train, test) Kinetics datasets; the test one yields ``(clip, label, video_index)``."""
    from paperzoo.data.datasets import kinetics_clip_datasets

    if cfg.data.dataset != "kinetics":
        raise ValueError(
            f"unknown data.dataset {cfg.data.dataset!r}; use 'kinetics' (with --data DIR) or "
            "'moving_digits'"
        )
    return kinetics_clip_datasets(cfg.data.root, cfg.video, recipe="the X3D paper recipe")


# -- running ---------------------------------------------------------------------------------


def _train(
    model: nn.Module, cfg: X3DRecipeConfig, ctx: RunContext, train: Dataset
) -> tuple[nn.Module, Any, int]:
    """Train; returns the method (``forward(clips) -> logits``), its device and the steps."""
    from paperzoo.train import Trainer
    from paperzoo.train.classification import Classification, precise_bn

    method = Classification(
        model, label_smoothing=cfg.x3d.label_smoothing,
        norm_weight_decay=cfg.x3d.norm_weight_decay, channels_last=cfg.x3d.channels_last,
    )  # fmt: skip
    batch = cfg.data.batch_size or max(1, cfg.global_batch_size // ctx.world_size)
    trainer = Trainer(
        method, train, ctx, cfg.trainer, cfg.optim,
        batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed,
    )  # fmt: skip
    state = trainer.fit()
    net = trainer.model
    precise_bn(
        net, train, num_batches=cfg.video.precise_bn_batches, batch_size=batch,
        device=trainer.device, num_workers=cfg.data.num_workers, seed=cfg.seed,
    )  # fmt: skip
    return net, trainer.device, state.step


def run(cfg: X3DRecipeConfig, ctx: RunContext) -> RunResult:
    """Train X3D (or, tiny, the 2D baseline) and test it multi-view; metrics in %."""
    from paperzoo.train import seed_everything
    from paperzoo.train.classification import evaluate_multiview

    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    if cfg.data.dataset == "moving_digits":
        data = _moving_digits(cfg, ctx)
        tests = {"val_": data["val"], "": data["test"]}
        train = data["train"]
    else:
        train, test = build_datasets(cfg)
        tests = {"": test}
        classes = getattr(train, "classes", None)
        if classes is not None and len(classes) > cfg.x3d.num_classes:
            raise ValueError(
                f"the train list has {len(classes)} classes but x3d.num_classes="
                f"{cfg.x3d.num_classes}; set --set x3d.num_classes={len(classes)}"
            )
    seed_everything(cfg.seed)  # the initial weights follow the run's seed (and match on every rank)
    model = build_model(cfg)
    net, device, steps = _train(model, cfg, ctx, train)
    result: dict[str, float] = {}
    extra: dict[str, Any] = {"model": "x3d_xs_2d" if cfg.x3d.frame_averaged_2d else cfg.x3d.model}
    for prefix, test in tests.items():
        metrics = evaluate_multiview(
            net, test, num_classes=cfg.x3d.num_classes, batch_size=cfg.video.eval_batch_size,
            num_workers=cfg.data.num_workers, device=device,
        )  # fmt: skip
        extra[f"num_{prefix}test_videos"] = int(metrics.pop("num_videos"))
        result.update({f"{prefix}{k}": v for k, v in metrics.items()})
    if cfg.data.dataset == "moving_digits":
        result["chance_top1"] = 100.0 / cfg.x3d.num_classes
        # A model that reads the digit perfectly but cannot see motion guesses the direction.
        result["frame_only_ceiling_top1"] = 100.0 / cfg.moving_digits.num_directions
        extra["params"] = sum(p.numel() for p in model.parameters())
    if not all(math.isfinite(v) for v in result.values()):
        raise FloatingPointError(f"non-finite metrics: {result}")
    return RunResult(metrics=result, steps=steps, extra=extra)
