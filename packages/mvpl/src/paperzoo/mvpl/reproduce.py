"""The runner of the MvPL recipes (configs in :mod:`paperzoo.mvpl.recipes`).

``run(cfg, ctx)``: pick the labelled videos (``mvpl.label_fraction`` of each class, from the
run's seed), fill the flow cache when the flow view is trained (unreadable videos are skipped,
counted and named), train with :class:`paperzoo.train.Trainer` (torchrun: DDP), re-estimate
BatchNorm on RGB training clips, and test the RGB view multi-view
(:func:`paperzoo.train.classification.evaluate_multiview`). Metrics are percentages; the
pseudo-labels' coverage and precision per epoch (from ``metrics.jsonl``) go to the summary.

- ``data.dataset == "moving_digits"`` (tiny): one cell of
  :func:`paperzoo.mvpl.recipes.tiny_study`. The videos (static clutter background) are written
  once into the study's shared folder and decoded once into memory; the flow cache is shared
  too. Val is for choices, test (read once) for the reported numbers.
- ``"kinetics"``, ``"ucf101"``, ``"hmdb51"``: the paper recipes (``--data DIR``, layouts in
  :class:`paperzoo.mvpl.recipes.MvPLRecipeConfig`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paperzoo.core.run import RunContext, RunResult
from paperzoo.mvpl.recipes import MvPLRecipeConfig

__all__ = ["build_method", "build_model", "labelled_indices", "pseudo_label_log", "run"]


def build_model(cfg: MvPLRecipeConfig) -> nn.Module:
    """The recipe's :class:`~paperzoo.mvpl.model.MultiviewNet` with a stem per trained view."""
    from paperzoo.mvpl import model as models

    m = cfg.mvpl
    if m.model == "mvpl_slow_r50":
        # The head pools over the whole res5 map, so any clip size works (8x224: (8, 7, 7)).
        return models.mvpl_slow_r50(
            num_classes=m.num_classes, views=m.views, dropout_rate=m.dropout,
            head_pool_kernel_size=None,
        )  # fmt: skip
    if m.model == "mvpl_r3d_18":
        return models.mvpl_r3d_18(num_classes=m.num_classes, views=m.views)
    return models.mvpl_r3d_tiny(
        num_classes=m.num_classes, views=m.views, width=m.tiny_width, dropout=m.dropout
    )


def build_method(cfg: MvPLRecipeConfig, model: nn.Module) -> nn.Module:
    from paperzoo.mvpl.method import MvPL

    m = cfg.mvpl
    return MvPL(
        model, views=m.views, semi=m.semi, threshold=m.threshold, lambda_u=m.lambda_u, mu=m.mu,
        mean=cfg.video.mean, std=cfg.video.std, tg_std=m.tg_std, flow_scale=m.flow_scale,
        randaugment_ops=m.randaugment_ops, randaugment_magnitude=m.randaugment_magnitude,
        cutout=m.cutout,
    )  # fmt: skip


def labelled_indices(labels: Any, fraction: float, seed: int) -> list[int]:
    """``fraction`` of each class's videos (``round(fraction * n_c)``, at least one), drawn
    from ``seed``; every video when ``fraction >= 1``."""
    from paperzoo.data.images import stratified_split

    labels = torch.as_tensor(labels)
    if fraction >= 1.0:
        return list(range(len(labels)))
    if fraction <= 0:
        raise ValueError(f"mvpl.label_fraction must be in (0, 1], got {fraction}")
    _, picked = stratified_split(labels, fraction, seed)
    chosen = set(picked.tolist())
    for c in torch.unique(labels).tolist():  # a class too small to round up keeps one video
        idx = torch.nonzero(labels == c).flatten().tolist()
        if not chosen.intersection(idx):
            chosen.add(idx[0])
    return sorted(chosen)


def _flow_settings(cfg: MvPLRecipeConfig) -> Any:
    """The flow between sampled frames (gap = sampling rate), at the frames' short side."""
    return dataclasses.replace(
        cfg.flow, frame_gap=cfg.video.sampling_rate, short_side=cfg.short_side
    )


def _readable(paths: list[str], cfg: MvPLRecipeConfig, cache: Any) -> list[int]:
    """Indices of the usable videos: through the flow cache when the flow view is trained
    (shared out over torchrun ranks, then read by all), else by probing each header."""
    from paperzoo.mvpl.views import precompute_flow
    from paperzoo.train import distributed as dist_utils

    limit = cfg.video.max_bad_fraction
    if cache is not None:
        rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
        if world > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                precompute_flow(cache, paths[rank::world], max_bad_fraction=1.0)
            dist_utils.barrier()
        return precompute_flow(cache, paths, max_bad_fraction=limit, what="training videos")
    from paperzoo.data.video import probe_video

    good, bad = [], []
    for i, p in enumerate(paths):
        try:
            probe_video(p)
            good.append(i)
        except Exception as e:  # any failure to open means unusable
            bad.append(f"{p} ({e})")
    if bad:
        msg = f"skipped {len(bad)} of {len(paths)} unreadable training videos: " + "; ".join(
            bad[:5]
        )
        if len(bad) > limit * len(paths):
            raise RuntimeError(f"{msg}; more than video.max_bad_fraction={limit}")
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return good


# -- data ------------------------------------------------------------------------------------


def _moving_digits(cfg: MvPLRecipeConfig, ctx: RunContext) -> tuple[Any, dict[str, Any]]:
    """(train videos in memory, {"val_": val clips, "": test clips})."""
    from paperzoo.data.datasets import read_kinetics_csv
    from paperzoo.data.synthetic import moving_digits_splits
    from paperzoo.mvpl.data import InMemoryVideos

    v = cfg.video
    root = (
        Path(cfg.data.root) if cfg.data.root else (ctx.shared_dir or ctx.out_dir) / "moving_digits"
    )
    splits = moving_digits_splits(
        root, ("train", "val", "test"), mean=v.mean, std=v.std,
        background=cfg.background, **cfg.moving_digits.write_kwargs(),
    )  # fmt: skip
    records, _ = read_kinetics_csv(root / "train.csv")
    train = InMemoryVideos(
        splits["train"].videos, [r.path for r in records], splits["train"].labels.tolist()
    )
    clip = dict(num_frames=v.num_frames, stride=v.sampling_rate, num_views=v.num_ensemble_views)
    return train, {"val_": splits["val"].sampled(**clip), "": splits["test"].sampled(**clip)}


def _records(cfg: MvPLRecipeConfig) -> tuple[list[Any], list[Any], list[str]]:
    """(train records, test records, classes) of a paper dataset."""
    from paperzoo.data import datasets as ds

    root = Path(cfg.data.root) if cfg.data.root else None
    name = cfg.data.dataset
    if name == "kinetics":
        train_csv, val_csv = ds.kinetics_lists(root, recipe="the MvPL paper recipe")
        train, classes = ds.read_kinetics_csv(train_csv)
        test, _ = ds.read_kinetics_csv(val_csv)
        return train, test, classes
    if root is None:
        raise FileNotFoundError(f"the MvPL {name} recipe needs --data DIR")
    if name == "ucf101":
        lists = root / "ucfTrainTestlist"
        train, classes = ds.read_ucf101_split(
            lists / "trainlist01.txt", lists / "classInd.txt", root / "videos"
        )
        test, _ = ds.read_ucf101_split(
            lists / "testlist01.txt", lists / "classInd.txt", root / "videos"
        )
        return train, test, classes
    if name == "hmdb51":
        splits = root / "testTrainMulti_7030_splits"
        train, classes = ds.read_hmdb51_split(splits, root / "videos", 1, train=True)
        test, _ = ds.read_hmdb51_split(splits, root / "videos", 1, train=False)
        return train, test, classes
    raise ValueError(
        f"unknown data.dataset {name!r}; use 'kinetics', 'ucf101', 'hmdb51' (with --data DIR) "
        "or 'moving_digits'"
    )


def _paper_data(cfg: MvPLRecipeConfig) -> tuple[Any, dict[str, Any], int]:
    from paperzoo.data.datasets import LabeledVideoDataset
    from paperzoo.data.samplers import ConstantClipsPerVideoSampler
    from paperzoo.data.transforms import video_eval_transform
    from paperzoo.mvpl.data import VideoFiles

    train, test, classes = _records(cfg)
    if len(classes) > cfg.mvpl.num_classes:
        raise ValueError(
            f"the train list has {len(classes)} classes but mvpl.num_classes="
            f"{cfg.mvpl.num_classes}; set --set mvpl.num_classes={len(classes)}"
        )
    v = cfg.video
    videos = VideoFiles([r.path for r in train], [int(r.label) for r in train], cfg.short_side)
    seconds = v.num_frames * v.sampling_rate / v.fps
    test_set = LabeledVideoDataset(
        test,
        clip_sampler=ConstantClipsPerVideoSampler(seconds, v.num_ensemble_views),
        num_frames=v.num_frames,
        transform=video_eval_transform(
            v.num_frames, v.test_crop_size, v.test_short_side, mean=v.mean, std=v.std,
            center_crop=v.num_spatial_crops == 1,
        ),
        num_crops=v.num_spatial_crops,
        crop_size=v.test_crop_size if v.num_spatial_crops > 1 else None,
        max_bad_fraction=v.max_bad_fraction,
        return_index=True,
        classes=classes,
    )  # fmt: skip
    return videos, {"": test_set}, len(classes)


# -- the pseudo-label log --------------------------------------------------------------------


def pseudo_label_log(metrics_jsonl: str | Path) -> list[dict[str, Any]]:
    """Per epoch, from the trainer's ``metrics.jsonl``: ``coverage`` (% of unlabelled clips
    whose aggregated confidence passed the threshold), ``precision`` (% of those whose
    pseudo-label is the true class; exact, as the ratio of the windows' mean correct and mean
    covered fractions) and ``accuracy`` (% of all pseudo-labels right)."""
    per: dict[int, dict[str, float]] = {}
    path = Path(metrics_jsonl)
    if not path.is_file():
        return []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if "pl_coverage" not in rec:
            continue
        e = per.setdefault(int(rec["epoch"]), {"n": 0, "cov": 0.0, "cor": 0.0, "acc": 0.0})
        e["n"] += 1
        e["cov"] += rec["pl_coverage"]
        e["cor"] += rec["pl_correct"]
        e["acc"] += rec["pl_accuracy"]
    out = []
    for epoch in sorted(per):
        e = per[epoch]
        out.append(
            {
                "epoch": epoch,
                "coverage": 100.0 * e["cov"] / e["n"],
                # None (JSON null) in an epoch where no pseudo-label passed the threshold.
                "precision": 100.0 * e["cor"] / e["cov"] if e["cov"] > 0 else None,
                "accuracy": 100.0 * e["acc"] / e["n"],
            }
        )
    return out


# -- running ---------------------------------------------------------------------------------


def run(cfg: MvPLRecipeConfig, ctx: RunContext) -> RunResult:
    """Train MvPL (or a baseline arm) and test its RGB view; metrics in %."""
    from paperzoo.mvpl.data import RGBClips, SemiSupervisedClips
    from paperzoo.mvpl.views import FlowCache
    from paperzoo.train import Trainer, seed_everything
    from paperzoo.train.classification import evaluate_multiview, precise_bn

    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    v, m = cfg.video, cfg.mvpl
    if cfg.data.dataset == "moving_digits":
        videos, tests = _moving_digits(cfg, ctx)
    else:
        videos, tests, _ = _paper_data(cfg)
    cache = None
    if "flow" in m.views:
        cache_dir = Path(cfg.flow_cache_dir) if cfg.flow_cache_dir else (
            (ctx.shared_dir or ctx.out_dir) / "flow_cache"
        )  # fmt: skip
        cache = FlowCache(cache_dir, _flow_settings(cfg))
    good = _readable([videos.path(i) for i in range(len(videos))], cfg, cache)
    videos = videos.subset(good)
    labels = [videos.label(i) for i in range(len(videos))]
    labelled = labelled_indices(labels, m.label_fraction, cfg.seed)
    train = SemiSupervisedClips(
        videos, labelled, num_frames=v.num_frames, stride=v.sampling_rate, flow_cache=cache,
        crop=v.train_crop_size, max_shift=m.max_shift, flip=m.flip,
    )  # fmt: skip

    seed_everything(cfg.seed)  # the initial weights follow the run's seed (same on every rank)
    model = build_model(cfg)
    method = build_method(cfg, model)
    batch = cfg.data.batch_size or max(1, cfg.global_batch_size // ctx.world_size)
    trainer = Trainer(
        method, train, ctx, cfg.trainer, cfg.optim,
        batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed,
    )  # fmt: skip
    state = trainer.fit()
    net = trainer.model
    device = trainer.device
    # The shared BatchNorms saw every view in training; the test view is RGB.
    precise_bn(
        net, RGBClips(train, v.mean, v.std), num_batches=v.precise_bn_batches,
        batch_size=min(batch, len(train)), device=device, num_workers=cfg.data.num_workers,
        seed=cfg.seed,
    )  # fmt: skip

    result: dict[str, float] = {}
    extra: dict[str, Any] = {
        "model": m.model,
        "views": list(m.views),
        "semi": m.semi,
        "labelled_videos": len(labelled),
        "train_videos": len(videos),
        "params_inference": sum(p.numel() for p in model.view_stems.stems["rgb"].parameters())
        + sum(p.numel() for p in model.shared_parameters()),
    }
    if cache is not None:
        extra["flow_cache"] = {
            "hits": cache.stats.hits, "computed": cache.stats.computed,
            "unreadable": cache.stats.unreadable,
        }  # fmt: skip
    for prefix, test in tests.items():
        metrics = evaluate_multiview(
            net, test, num_classes=m.num_classes, batch_size=v.eval_batch_size,
            num_workers=cfg.data.num_workers, device=device,
        )  # fmt: skip
        extra[f"num_{prefix}test_videos"] = int(metrics.pop("num_videos"))
        result.update({f"{prefix}{k}": val for k, val in metrics.items()})
    log = pseudo_label_log(Path(ctx.out_dir) / "metrics.jsonl")
    if log:
        extra["pseudo_labels_per_epoch"] = log
        result["pl_coverage"] = log[-1]["coverage"]
        if log[-1]["precision"] is not None:
            result["pl_precision"] = log[-1]["precision"]
    result["labelled_clips"] = float(len(labelled))
    if cfg.data.dataset == "moving_digits":
        result["chance_top1"] = 100.0 / m.num_classes
    if not all(math.isfinite(val) for val in result.values()):
        raise FloatingPointError(f"non-finite metrics: {result}")
    return RunResult(metrics=result, steps=state.step, extra=extra)
