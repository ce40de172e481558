"""Runners of the MViT recipes (``paperzoo reproduce mvit [--recipe paper --data K400]``).

- :func:`run_paper`: train a registered MViT on a Kinetics-style folder (``train.csv``,
  ``val.csv``) with the official recipe and test it with multi-view averaging.
- :func:`run_tiny`: the tiny claim, MViT vs a single-scale ViT of similar compute on the
  moving-digits videos, each trained once per seed; reports per-seed and mean top-1, FLOPs and
  parameter counts.

Configs are in :mod:`paperzoo.mvit.recipes`.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from paperzoo.core import RunContext, RunResult, create_model
from paperzoo.core.io import atomic_write_json
from paperzoo.mvit.flops import count_macs
from paperzoo.mvit.method import VideoClassification
from paperzoo.mvit.recipes import MViTRecipeConfig, TinyConfig

__all__ = ["multi_view_evaluate", "run_paper", "run_tiny"]


def _sub_context(ctx: RunContext, name: str) -> RunContext:
    return RunContext(
        out_dir=ctx.out_dir / name,
        recipe=ctx.recipe,
        resume=ctx.resume,
        rank=ctx.rank,
        world_size=ctx.world_size,
        local_rank=ctx.local_rank,
    )


# -- tiny ------------------------------------------------------------------------------------


def _decode_all(dataset: Any, mean: float = 0.45, std: float = 0.225) -> TensorDataset:
    """Decode every video once: (N, C, T, H, W) normalised float clips and int64 labels."""
    clips, labels = [], []
    for i in range(len(dataset)):
        clip, label = dataset[i]
        clips.append(clip)
        labels.append(int(label))
    x = (torch.stack(clips) - mean) / std
    return TensorDataset(x, torch.tensor(labels))


@torch.no_grad()
def _top1(model: nn.Module, data: TensorDataset, batch_size: int = 64) -> float:
    model.eval()
    device = next(model.parameters()).device
    x, y = data.tensors
    correct = 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size].to(device))
        correct += int((logits.argmax(-1).cpu() == y[i : i + batch_size]).sum())
    return 100.0 * correct / len(x)


def _short(name: str) -> str:
    return name.split("_")[0]


def run_tiny(cfg: TinyConfig, ctx: RunContext) -> RunResult:
    """Train every model of ``cfg.models`` once per seed on moving digits; compare val top-1."""
    from paperzoo.data.synthetic import moving_digits_dataset
    from paperzoo.train import Trainer, seed_everything
    from paperzoo.train import distributed as dist_utils

    d = cfg.data
    root = Path(d.root) if d.root else ctx.out_dir / "data"
    write_kwargs = dict(
        num_videos_per_class=d.videos_per_class,
        num_directions=d.num_directions,
        num_frames=d.num_frames,
        size=d.image_size,
        speed=d.speed,
        seed=d.data_seed,
    )
    if ctx.is_main:  # write the videos once, before the other ranks read them
        moving_digits_dataset(root, "train", **write_kwargs)
    dist_utils.barrier()
    train = _decode_all(moving_digits_dataset(root, "train", **write_kwargs))
    val = _decode_all(moving_digits_dataset(root, "val", **write_kwargs))
    num_classes = 10 * d.num_directions
    clip_shape = tuple(train.tensors[0].shape[1:])

    results: dict[str, list[float]] = {}
    metrics: dict[str, float] = {}
    for name in cfg.models:
        with torch.device("meta"):
            probe = create_model(name, num_classes=num_classes)
        metrics[f"{_short(name)}_gmacs"] = count_macs(probe, (1, *clip_shape)) / 1e9
        metrics[f"{_short(name)}_params_m"] = sum(p.numel() for p in probe.parameters()) / 1e6
    for seed in cfg.seeds:
        for name in cfg.models:
            seed_everything(seed)
            model = create_model(name, num_classes=num_classes)
            method = VideoClassification(model, label_smoothing=cfg.label_smoothing)
            trainer = Trainer(
                method,
                train,
                _sub_context(ctx, f"{name}_seed{seed}"),
                cfg.trainer,
                cfg.optim,
                batch_size=d.batch_size,
                num_workers=0,
                seed=seed,
            )
            trainer.fit()
            top1 = _top1(trainer.model.model, val)
            results.setdefault(name, []).append(top1)
            metrics[f"{_short(name)}_top1_seed{seed}"] = top1
    for name, values in results.items():
        metrics[f"{_short(name)}_top1_mean"] = statistics.fmean(values)
        metrics[f"{_short(name)}_top1_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    extra: dict[str, Any] = {"per_seed_top1": results, "seeds": list(cfg.seeds)}
    if len(cfg.models) == 2:
        a, b = (_short(n) for n in cfg.models)
        diffs = [x - y for x, y in zip(results[cfg.models[0]], results[cfg.models[1]])]
        metrics[f"{a}_minus_{b}_top1"] = statistics.fmean(diffs)
        metrics[f"{a}_wins"] = float(sum(x > 0 for x in diffs))
        metrics["claim_holds"] = float(statistics.fmean(diffs) > 0)
        extra["claim"] = (
            f"{a} beats the single-scale {b} of similar compute: "
            f"{'holds' if metrics['claim_holds'] else 'does NOT hold'} at tiny scale "
            f"({metrics[f'{a}_top1_mean']:.1f} vs {metrics[f'{b}_top1_mean']:.1f} mean val top-1 "
            f"over seeds {list(cfg.seeds)}; {metrics[f'{a}_gmacs'] * 1e3:.1f} vs "
            f"{metrics[f'{b}_gmacs'] * 1e3:.1f} MMACs per clip)"
        )
    if ctx.is_main:
        atomic_write_json(ctx.out_dir / "tiny_claim.json", {"metrics": metrics, **extra})
        print(extra.get("claim", json.dumps(metrics)))
    steps = cfg.trainer.max_steps * len(cfg.seeds) * len(cfg.models)
    return RunResult(metrics=metrics, steps=steps, extra=extra)


# -- paper -----------------------------------------------------------------------------------


class _Repeated(Dataset):
    """Each item ``num_sample`` times per epoch (PySlowFast ``AUG.NUM_SAMPLE``), re-augmented."""

    def __init__(self, base: Any, num_sample: int) -> None:
        self.base, self.num_sample = base, num_sample

    def __len__(self) -> int:
        return len(self.base) * self.num_sample

    def __getitem__(self, index: int) -> Any:
        return self.base[index // self.num_sample]


def _require_kinetics(root: str) -> tuple[Path, Path]:
    if not root:
        raise ValueError(
            "the MViT paper recipe trains on Kinetics-400: pass --data /path/to/kinetics400, a "
            "folder with train.csv and val.csv ('relative/or/absolute/video.mp4 label' per line)"
        )
    base = Path(root)
    lists = (base / "train.csv", base / "val.csv")
    missing = [str(p) for p in lists if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Kinetics video lists not found: {', '.join(missing)}; --data must be a folder "
            "with train.csv and val.csv (Kinetics-style 'path label' lines)"
        )
    return lists


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


@torch.no_grad()
def multi_view_evaluate(
    model: nn.Module,
    dataset: Any,
    num_views: int,
    *,
    batch_size: int = 4,
    num_classes: int | None = None,
) -> dict[str, float]:
    """Top-1/top-5 (%) of softmax scores averaged over each video's ``num_views`` views.

    ``dataset`` yields ``(clip, label, video_index)`` with the views of one video contiguous
    (:class:`paperzoo.data.datasets.LabeledVideoDataset` with ``return_index=True``). Under
    torchrun each rank scores a strided share of the views and the scores are gathered.
    """
    from paperzoo.train import distributed as dist_utils

    model.eval()
    device = next(model.parameters()).device
    rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
    indices = list(range(rank, len(dataset), world))
    n_videos = math.ceil(len(dataset) / num_views)
    scores: torch.Tensor | None = None
    labels = torch.full((n_videos,), -1, dtype=torch.long)
    for i in range(0, len(indices), batch_size):
        items = [dataset[j] for j in indices[i : i + batch_size]]
        clips = torch.stack([it[0] for it in items]).to(device)
        probs = model(clips).float().softmax(-1).cpu()
        if scores is None:
            scores = torch.zeros(n_videos, num_classes or probs.shape[1])
        for (_, label, video), p in zip(items, probs):
            scores[video] += p
            labels[video] = int(label)
    if scores is None:
        raise ValueError("multi_view_evaluate got an empty dataset")
    if dist_utils.is_dist():  # every rank scored a share of the views: add them up
        import torch.distributed as dist

        dist.all_reduce(scores, op=dist.ReduceOp.SUM)
        dist.all_reduce(labels, op=dist.ReduceOp.MAX)
    seen = labels >= 0
    top5 = scores[seen].topk(min(5, scores.shape[1]), dim=-1).indices
    target = labels[seen][:, None]
    return {
        "top1": 100.0 * float((top5[:, :1] == target).any(-1).float().mean()),
        "top5": 100.0 * float((top5 == target).any(-1).float().mean()),
    }


def run_paper(cfg: MViTRecipeConfig, ctx: RunContext) -> RunResult:
    """Train ``cfg.model.name`` on ``cfg.data.root`` (Kinetics-style) and test it multi-view."""
    from paperzoo.data.datasets import LabeledVideoDataset
    from paperzoo.data.samplers import ConstantClipsPerVideoSampler, RandomClipSampler
    from paperzoo.data.transforms import MixupCutmix, video_eval_transform
    from paperzoo.train import Trainer, seed_everything

    train_csv, val_csv = _require_kinetics(cfg.data.root)
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
    method = VideoClassification(
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
    result = multi_view_evaluate(
        trainer.model.model,
        val_set,
        t.num_clips * t.num_crops,
        batch_size=t.batch_size,
        num_classes=num_classes,
    )
    return RunResult(metrics=result, steps=state.step, extra={"views": [t.num_clips, t.num_crops]})
