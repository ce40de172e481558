"""Runners of the SlowFast recipes (configs in :mod:`paperzoo.slowfast.recipes`).

``run(cfg, ctx)`` trains with :class:`paperzoo.train.Trainer` and tests.

- ``data.dataset == "kinetics"`` (paper): ``data.root`` holds ``train.csv`` and ``val.csv``
  (Kinetics-style lists, paths relative to the list's folder). Training clips are random
  windows of ``num_frames * sampling_rate / fps`` seconds, jittered, cropped and flipped.
  Before testing, BatchNorm statistics are re-estimated on training clips (precise BN); each
  test video then gives ``num_ensemble_views`` clips x ``num_spatial_crops`` crops whose
  softmax scores are averaged (PySlowFast's multi-view test).
- ``data.dataset == "moving_digits"`` (tiny): the videos are written into
  ``OUT/moving_digits``, decoded once, and every model in (``slowfast.model``,
  ``slowfast.baseline``) trains for every seed in ``moving_digits.seeds`` with the same
  budget (``OUT/<model>/seed<k>``); the metrics are means over seeds, per-seed values in
  ``summary.json``'s ``extra``. No flips: they would swap the left/right classes.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import statistics
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from paperzoo.core.run import RunContext, RunResult
from paperzoo.slowfast import model as models
from paperzoo.slowfast.method import VideoClassification
from paperzoo.slowfast.recipes import SlowFastRecipeConfig

__all__ = ["build_model", "evaluate", "evaluate_multiview", "precise_bn", "run"]


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


def _clip_seconds(cfg: SlowFastRecipeConfig) -> float:
    return cfg.video.num_frames * cfg.video.sampling_rate / cfg.video.fps


def _kinetics_lists(root: str) -> tuple[Path, Path]:
    if not root:
        raise FileNotFoundError(
            "the paper recipe needs Kinetics-400: pass --data /path/to/kinetics (a folder "
            "holding train.csv and val.csv, lines 'relative/video.mp4 label')"
        )
    base = Path(root)
    lists = (base / "train.csv", base / "val.csv")
    missing = [str(p) for p in lists if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"data.root={root!r} lacks {', '.join(missing)}; it must hold train.csv and val.csv "
            "(Kinetics-style lists: 'relative/video.mp4 label' per line)"
        )
    return lists


def _kinetics_datasets(cfg: SlowFastRecipeConfig) -> tuple[Dataset, Dataset]:
    train_csv, val_csv = _kinetics_lists(cfg.data.root)  # fail before any heavy import
    from paperzoo.data.datasets import LabeledVideoDataset
    from paperzoo.data.samplers import ConstantClipsPerVideoSampler, RandomClipSampler
    from paperzoo.data.transforms import video_eval_transform, video_train_transform

    v = cfg.video
    train = LabeledVideoDataset.from_csv(
        train_csv,
        clip_sampler=RandomClipSampler(_clip_seconds(cfg)),
        num_frames=v.num_frames,
        transform=video_train_transform(
            v.num_frames,
            crop_size=v.train_crop_size,
            min_scale=v.train_jitter_scales[0],
            max_scale=v.train_jitter_scales[1],
            mean=v.mean,
            std=v.std,
        ),
        max_bad_fraction=v.max_bad_fraction,
    )
    test = LabeledVideoDataset.from_csv(
        val_csv,
        clip_sampler=ConstantClipsPerVideoSampler(_clip_seconds(cfg), v.num_ensemble_views),
        num_frames=v.num_frames,
        transform=video_eval_transform(
            v.num_frames,
            crop_size=v.test_crop_size,
            short_side=v.test_crop_size,
            mean=v.mean,
            std=v.std,
            center_crop=v.num_spatial_crops == 1,
        ),
        num_crops=v.num_spatial_crops,
        crop_size=v.test_crop_size,
        max_bad_fraction=v.max_bad_fraction,
        return_index=True,
    )
    return train, test


class _DecodedOnce(Dataset):
    """A small video dataset decoded once into memory as uint8, normalised on access.

    Items: ``(clip float (C, T, H, W), label, index)``.
    """

    def __init__(self, dataset: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        clips, labels = [], []
        for i in range(len(dataset)):
            clip, label = dataset[i][:2]
            clips.append(clip)
            labels.append(int(label))
        self.clips = torch.stack(clips)  # (N, C, T, H, W) uint8
        self.labels = torch.tensor(labels)
        self.mean = torch.tensor(mean).view(-1, 1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        clip = self.clips[index].float().div_(255.0).sub_(self.mean).div_(self.std)
        return clip, self.labels[index], index


def _moving_digits_datasets(cfg: SlowFastRecipeConfig, ctx: RunContext) -> tuple[Dataset, Dataset]:
    from paperzoo.data.datasets import LabeledVideoDataset
    from paperzoo.data.samplers import FullVideoSampler
    from paperzoo.data.synthetic import write_moving_digits
    from paperzoo.data.transforms import ToLayout
    from paperzoo.train import distributed as dist_utils

    md = cfg.moving_digits
    root = Path(cfg.data.root) if cfg.data.root else ctx.out_dir / "moving_digits"
    args = dict(
        num_videos_per_class=md.num_videos_per_class,
        num_directions=md.num_directions,
        digits=tuple(md.digits),
        num_frames=md.num_frames,
        size=md.size,
        speed=md.speed,
        val_fraction=md.val_fraction,
        seed=md.data_seed,
    )
    meta = root / "meta.json"
    wanted = json.loads(json.dumps({**args, "digits": list(md.digits)}))
    current = json.loads(meta.read_text()) if meta.is_file() else {}
    if ctx.is_main and any(current.get(k) != v for k, v in wanted.items()):
        write_moving_digits(root, **args)
    dist_utils.barrier()
    as_uint8 = ToLayout("TCHW", "CTHW")  # decoded frames stay uint8 until normalised
    splits = []
    for split in ("train", "val"):
        videos = LabeledVideoDataset.from_csv(
            root / f"{split}.csv",
            clip_sampler=FullVideoSampler(),
            num_frames=md.num_frames,
            transform=as_uint8,
        )
        splits.append(_DecodedOnce(videos, cfg.video.mean, cfg.video.std))
    return splits[0], splits[1]


# -- evaluation ----------------------------------------------------------------------------------


@torch.no_grad()
def precise_bn(
    model: nn.Module, dataset: Dataset, *, num_batches: int, batch_size: int, device: Any
) -> None:
    """Re-estimate BatchNorm statistics as exact averages over ``num_batches`` training
    batches (PySlowFast's precise BN; ``torch.optim.swa_utils.update_bn`` does the work)."""
    if num_batches <= 0:
        return
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    inputs = (batch[0] for batch in itertools.islice(loader, num_batches))
    torch.optim.swa_utils.update_bn(inputs, model, device=device)


@torch.no_grad()
def evaluate_multiview(
    model: nn.Module,
    dataset: Any,
    *,
    num_videos: int,
    num_classes: int,
    batch_size: int,
    device: Any,
    num_workers: int = 0,
) -> dict[str, float]:
    """Top-1/top-5 (%) over videos, each scored by the mean softmax of all its views.

    ``dataset`` items are ``(clip, label, video_index)``; views are sharded over processes and
    the per-video scores summed across them.
    """
    from paperzoo.train import distributed as dist_utils

    rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
    indices = list(range(rank, len(dataset), world))
    loader = DataLoader(
        torch.utils.data.Subset(dataset, indices), batch_size=batch_size, num_workers=num_workers
    )
    scores = torch.zeros(num_videos, num_classes, device=device)
    labels = torch.full((num_videos,), -1, dtype=torch.long, device=device)
    model.eval()
    for clips, target, video in loader:
        probs = model(clips.to(device)).float().softmax(dim=1)
        video = video.to(device)
        scores.index_add_(0, video, probs)
        labels[video] = target.to(device)
    if dist_utils.is_dist():
        torch.distributed.all_reduce(scores)
        torch.distributed.all_reduce(labels, op=torch.distributed.ReduceOp.MAX)
    seen = labels >= 0
    scores, labels = scores[seen], labels[seen]
    top5 = scores.topk(min(5, num_classes), dim=1).indices
    return {
        "top1": 100.0 * (top5[:, 0] == labels).float().mean().item(),
        "top5": 100.0 * (top5 == labels[:, None]).any(dim=1).float().mean().item(),
        "num_videos": float(seen.sum().item()),
    }


@torch.no_grad()
def evaluate(
    model: nn.Module, dataset: Dataset, *, num_directions: int, batch_size: int, device: Any
) -> dict[str, float]:
    """Single-view accuracies (%) on moving digits: class, direction and digit."""
    model.eval()
    correct = {"top1": 0, "direction_acc": 0, "digit_acc": 0}
    total = 0
    for clips, labels, _ in DataLoader(dataset, batch_size=batch_size):
        pred = model(clips.to(device)).argmax(dim=1).cpu()
        correct["top1"] += int((pred == labels).sum())
        correct["direction_acc"] += int((pred % num_directions == labels % num_directions).sum())
        correct["digit_acc"] += int((pred // num_directions == labels // num_directions).sum())
        total += len(labels)
    return {k: 100.0 * v / total for k, v in correct.items()}


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

    torch.manual_seed(seed)  # the model's initial weights follow the run's seed
    method = VideoClassification(
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
    train, val = _moving_digits_datasets(cfg, ctx)
    md = cfg.moving_digits
    num_classes = cfg.slowfast.num_classes or len(md.digits) * md.num_directions
    names = [n for n in (cfg.slowfast.model, cfg.slowfast.baseline) if n]
    per_seed: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    steps = 0
    for seed in md.seeds:
        for name in names:
            sub = dataclasses.replace(ctx, out_dir=ctx.out_dir / name / f"seed{seed}")
            net, steps = _train(name, cfg, sub, train, num_classes, seed)
            device = next(net.parameters()).device
            result = evaluate(
                net,
                val,
                num_directions=md.num_directions,
                batch_size=cfg.video.eval_batch_size,
                device=device,
            )
            for key, value in result.items():
                per_seed[name].setdefault(key, []).append(value)
    metrics: dict[str, float] = {}
    for name, results in per_seed.items():
        for key, values in results.items():
            metrics[f"{name}/{key}"] = statistics.fmean(values)
            if len(values) > 1:
                metrics[f"{name}/{key}_std"] = statistics.stdev(values)
    if len(names) == 2:
        ours, base = (per_seed[n]["direction_acc"] for n in names)
        metrics["direction_acc_gap"] = statistics.fmean(a - b for a, b in zip(ours, base))
        metrics["seeds_won"] = float(sum(a > b for a, b in zip(ours, base)))
    extra = {
        "seeds": list(md.seeds),
        "per_seed": per_seed,
        "chance_direction_acc": 100.0 / md.num_directions,
    }
    return RunResult(metrics=metrics, steps=steps, extra=extra)


def _run_kinetics(cfg: SlowFastRecipeConfig, ctx: RunContext) -> RunResult:
    train, test = _kinetics_datasets(cfg)
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
