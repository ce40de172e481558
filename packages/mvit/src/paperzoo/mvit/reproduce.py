"""Runners of the MViT recipes (``paperzoo reproduce mvit [--recipe paper --data K400]``).

- :func:`run_paper`: train a registered MViT on a Kinetics-style folder (``train.csv``,
  ``val.csv``) with the official recipe and test it with multi-view averaging.
- :func:`run_tiny`: one cell of the tiny study (:func:`paperzoo.mvit.recipes.tiny_study`): one
  model, one seed, trained from scratch on the moving-digits videos, then val top-1 (for
  choices) and test top-1 (the reported number), with its parameters and MACs.

Configs are in :mod:`paperzoo.mvit.recipes`; the training and test procedure is the shared
one of :mod:`paperzoo.train.classification`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from paperzoo.core import RunContext, RunResult, create_model
from paperzoo.mvit.flops import count_macs
from paperzoo.mvit.recipes import MViTRecipeConfig, TinyConfig

__all__ = ["run_paper", "run_tiny"]


# -- tiny ------------------------------------------------------------------------------------


def run_tiny(cfg: TinyConfig, ctx: RunContext) -> RunResult:
    """Train ``cfg.model`` with ``cfg.seed`` on moving digits; val (and test) top-1, MACs, params."""
    from paperzoo.data.synthetic import moving_digits_splits
    from paperzoo.train import Trainer, seed_everything
    from paperzoo.train.classification import Classification, evaluate

    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    d = cfg.data
    root = Path(d.root) if d.root else (ctx.shared_dir or ctx.out_dir) / "moving_digits"
    splits = ("train", "val", "test") if cfg.eval_test else ("train", "val")
    data = moving_digits_splits(
        root, splits, num_videos_per_class=d.videos_per_class, num_directions=d.num_directions,
        digits=tuple(d.digits), num_frames=d.num_frames, size=d.image_size, speed=d.speed,
        val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.data_seed,
    )  # fmt: skip
    num_classes = len(d.digits) * d.num_directions
    seed_everything(cfg.seed)
    model = create_model(cfg.model, num_classes=num_classes)
    clip_shape = tuple(data["train"].videos.shape[1:])
    method = Classification(model, label_smoothing=cfg.label_smoothing)
    trainer = Trainer(
        method, data["train"], ctx, cfg.trainer, cfg.optim,
        batch_size=d.batch_size, num_workers=0, seed=cfg.seed,
    )  # fmt: skip
    state = trainer.fit()
    net = trainer.model.model
    directions = {"direction_acc": lambda y: y % d.num_directions}
    metrics = {
        "mmacs": count_macs(net, (1, *clip_shape)) / 1e6,
        "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
    }
    for split in splits[1:]:
        result = evaluate(net, data[split], batch_size=128, label_groups=directions)
        prefix = "" if split == "test" else "val_"
        metrics[f"{prefix}top1"] = result["top1"]
        metrics[f"{prefix}direction_acc"] = result["direction_acc"]
    extra: dict[str, Any] = {
        "model": cfg.model,
        "num_videos": {s: len(data[s]) for s in splits},
        "chance_top1": 100.0 / num_classes,
    }
    return RunResult(metrics=metrics, steps=state.step, extra=extra)


# -- paper -----------------------------------------------------------------------------------


class _Repeated(Dataset):
    """Each item ``num_sample`` times per epoch (PySlowFast ``AUG.NUM_SAMPLE``), re-augmented."""

    def __init__(self, base: Any, num_sample: int) -> None:
        self.base, self.num_sample = base, num_sample

    def __len__(self) -> int:
        return len(self.base) * self.num_sample

    def __getitem__(self, index: int) -> Any:
        return self.base[index // self.num_sample]


def _train_transform(cfg: MViTRecipeConfig) -> Any:
    from torchvision.transforms import v2

    from paperzoo.data.transforms import (
        Normalize,
        ToLayout,
        VideoRandAugment,
        VideoRandomErasing,
    )

    d, a = cfg.data, cfg.aug
    ops: list[Any] = [
        v2.RandomResizedCrop(
            d.train_crop_size, scale=tuple(d.crop_scale), ratio=tuple(d.crop_aspect), antialias=True
        )
    ]
    if a.enabled:
        if a.flip:
            ops.append(v2.RandomHorizontalFlip())
        if a.rand_augment_ops > 0:
            ops.append(
                VideoRandAugment(a.rand_augment_ops, a.rand_augment_magnitude, layout="TCHW")
            )
    ops += [v2.ToDtype(torch.float32, scale=True), Normalize(d.mean, d.std, layout="TCHW")]
    if a.enabled and a.random_erasing > 0:
        ops.append(VideoRandomErasing(p=a.random_erasing, value="random", layout="TCHW"))
    ops.append(ToLayout("TCHW", "CTHW"))
    return v2.Compose(ops)


def run_paper(cfg: MViTRecipeConfig, ctx: RunContext) -> RunResult:
    """Train ``cfg.model.name`` on ``cfg.data.root`` (Kinetics-style) and test it multi-view."""
    from paperzoo.data.datasets import LabeledVideoDataset, kinetics_lists
    from paperzoo.data.samplers import ConstantClipsPerVideoSampler, RandomClipSampler
    from paperzoo.data.transforms import MixupCutmix, video_eval_transform
    from paperzoo.train import Trainer, seed_everything
    from paperzoo.train.classification import Classification, evaluate_multiview

    train_csv, val_csv = kinetics_lists(cfg.data.root, recipe="the MViT paper recipe")
    d = cfg.data
    clip_seconds = d.num_frames * d.sampling_rate / d.target_fps
    train_set = LabeledVideoDataset.from_csv(
        train_csv,
        clip_sampler=RandomClipSampler(clip_seconds),
        num_frames=d.num_frames,
        transform=_train_transform(cfg),
    )
    num_classes = cfg.model.num_classes
    seed_everything(cfg.seed)
    model = create_model(
        cfg.model.name,
        num_classes=num_classes,
        drop_path_rate=cfg.model.drop_path_rate,
        head_dropout=cfg.model.head_dropout,
        spatial_size=d.train_crop_size,
        temporal_size=d.num_frames,
    )
    m = cfg.mixup
    mixup = (
        MixupCutmix(
            num_classes,
            mixup_alpha=m.mixup_alpha,
            cutmix_alpha=m.cutmix_alpha,
            prob=m.prob,
            switch_prob=m.switch_prob,
            label_smoothing=m.label_smoothing,
        )
        if m.enabled
        else None
    )
    method = Classification(
        model, label_smoothing=0.0 if m.enabled else m.label_smoothing, mixup=mixup
    )
    trainer = Trainer(
        method,
        _Repeated(train_set, d.num_sample),
        ctx,
        cfg.trainer,
        cfg.optim,
        batch_size=d.batch_size,
        num_workers=d.num_workers,
        seed=cfg.seed,
    )
    state = trainer.fit()
    t = cfg.test
    val_set = LabeledVideoDataset.from_csv(
        val_csv,
        clip_sampler=ConstantClipsPerVideoSampler(clip_seconds, t.num_clips),
        num_frames=d.num_frames,
        transform=video_eval_transform(
            d.num_frames, d.test_crop_size, d.test_short_side, d.mean, d.std,
            center_crop=t.num_crops == 1,
        ),
        num_crops=t.num_crops,
        crop_size=d.test_crop_size if t.num_crops > 1 else None,
        return_index=True,
    )  # fmt: skip
    result = evaluate_multiview(
        trainer.model.model,
        val_set,
        num_classes=num_classes,
        batch_size=t.batch_size,
        num_workers=d.num_workers,
    )
    return RunResult(metrics=result, steps=state.step, extra={"views": [t.num_clips, t.num_crops]})
