"""The runner of the TaCo recipes: ``run(cfg, ctx) -> RunResult``, one run (one study cell).

1. Pre-training data: moving digits decoded into memory (tiny) or a Kinetics-style list
   (paper), each video giving two clips through :class:`~paperzoo.taco.transforms.TaCoViews`.
2. TaCo (:class:`~paperzoo.taco.model.TaCo`) from ``cfg.seed``, trained by
   :class:`~paperzoo.taco.method.TaCoMethod` with :class:`paperzoo.train.Trainer` (one process,
   or DDP under torchrun; ``--resume`` continues from ``OUT/checkpoints``).
3. Evaluation of the query backbone:
   - tiny: a linear probe (and kNN) on frozen pooled features of the centre clip of every
     train video, scored on ``eval.split``, with the direction part of the label separately;
   - the fine-tune (both recipes): the backbone plus a new linear classifier trained end to
     end through the Trainer (``OUT/finetune``, its own checkpoints and exact resume) on
     ``finetune.label_fraction`` of the train videos (tiny) or a UCF-101 / HMDB-51 split, then
     tested (single view on moving digits; clips x crops averaged on UCF/HMDB).

Metrics are percentages: ``linear_top1``, ``knn_top1``, ``linear_direction_acc``,
``finetune_top1``, ``finetune_direction_acc`` (tiny), ``finetune_top1/top5`` (paper), and the
transformation heads' final training accuracies in ``extra``.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from paperzoo.core import create_model
from paperzoo.core.run import RunContext, RunResult
from paperzoo.taco.method import TaCoMethod
from paperzoo.taco.model import TaCo
from paperzoo.taco.recipes import TaCoRecipeConfig
from paperzoo.taco.transforms import TaCoClips, TaCoViews, TemporalTransforms
from paperzoo.train import Trainer, seed_everything
from paperzoo.train import distributed as dist_utils

__all__ = ["VideoClassifier", "run"]


class VideoClassifier(nn.Module):
    """A pre-trained video encoder's pooled features -> dropout -> a new linear layer.

    ``encoder`` is a copy of TaCo's query encoder (its MoCo projector is dropped) and
    ``num_features`` its pooled width (``TaCo.num_features``).
    """

    def __init__(
        self, encoder: nn.Module, num_features: int, num_classes: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder.fc = nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(num_features, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))


def _spec(cfg: TaCoRecipeConfig) -> TemporalTransforms:
    return TemporalTransforms(
        names=tuple(cfg.taco.transformations), num_frames=cfg.video.num_frames,
        base_stride=cfg.video.sampling_rate, speeds=tuple(cfg.taco.speeds),
    )  # fmt: skip


def _views(cfg: TaCoRecipeConfig, spec: TemporalTransforms) -> TaCoViews:
    t, v = cfg.taco, cfg.video
    return TaCoViews(
        spec, size=v.crop_size, crop_scale=tuple(t.crop_scale), jitter=t.jitter, mean=v.mean,
        std=v.std, flip=t.flip,
    )  # fmt: skip


def _check(cfg: TaCoRecipeConfig) -> None:
    if cfg.taco.heads and not cfg.taco.transformations:
        raise ValueError("taco.heads=true needs transformations to predict (taco.transformations)")


def _build_model(cfg: TaCoRecipeConfig, spec: TemporalTransforms) -> TaCo:
    m = cfg.moco
    return create_model(
        cfg.model, tasks=spec.tasks if cfg.taco.heads else {}, dim=m.dim,
        queue_size=m.queue_size, momentum=m.momentum, temperature=m.temperature, mlp=m.mlp,
        byol_predictor=cfg.taco.framework == "byol",
    )  # fmt: skip


# -- data --------------------------------------------------------------------------------------


def _moving_digits(cfg: TaCoRecipeConfig, ctx: RunContext, splits: tuple[str, ...]) -> dict:
    from paperzoo.data.synthetic import moving_digits_splits

    root = Path(cfg.data.root) if cfg.data.root else (ctx.shared_dir or ctx.out_dir)
    return moving_digits_splits(
        root / "moving_digits", splits, mean=cfg.video.mean, std=cfg.video.std,
        **cfg.moving_digits.write_kwargs(),
    )  # fmt: skip


def _kinetics_pretrain(cfg: TaCoRecipeConfig, spec: TemporalTransforms) -> Dataset:
    """Kinetics-style list; each item decodes a window of twice the clip span (at the fastest
    speed) and the two views draw their clips inside it."""
    from paperzoo.data.datasets import LabeledVideoDataset, kinetics_lists
    from paperzoo.data.samplers import RandomClipSampler

    (train_csv,) = kinetics_lists(cfg.data.root, ("train",), recipe="the TaCo paper recipe")
    window = 2 * spec.span() / cfg.video.fps
    return LabeledVideoDataset.from_csv(
        train_csv, clip_sampler=RandomClipSampler(window), transform=_views(cfg, spec)
    )


class _Pretrain(Dataset):
    """(views, labels) items of a labelled video dataset whose transform makes the views."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index][0]


# -- evaluation --------------------------------------------------------------------------------


def _direction(num_directions: int):
    return lambda y: y % num_directions


def _probe(
    model: TaCo, data: dict, cfg: TaCoRecipeConfig, device: torch.device, prefix: str = ""
) -> dict:
    """Linear probe and kNN on frozen pooled features of each video's centre clip."""
    from paperzoo.train.eval import extract_features, knn_accuracy, linear_probe

    v, e = cfg.video, cfg.eval
    clips = dict(num_frames=v.num_frames, stride=v.sampling_rate, random_start=False)
    model.to(device)
    fit = extract_features(model, data["train"].sampled(**clips), batch_size=e.batch_size)
    score = extract_features(model, data[e.split].sampled(**clips), batch_size=e.batch_size)
    num_classes = len(cfg.moving_digits.digits) * cfg.moving_digits.num_directions
    out: dict[str, float] = {}
    if e.linear:
        probe = linear_probe(*fit, *score, protocol="tiny", num_classes=num_classes, seed=cfg.seed)
        with torch.no_grad():
            pred = probe.classifier(score[0]).argmax(dim=1)
        to_dir = _direction(cfg.moving_digits.num_directions)
        out[f"{prefix}linear_top1"] = probe.top1
        out[f"{prefix}linear_train_top1"] = probe.train_top1
        out[f"{prefix}linear_direction_acc"] = (
            100.0 * (to_dir(pred) == to_dir(score[1])).float().mean().item()
        )
    if e.knn:
        knn = knn_accuracy(
            *fit, *score, k=e.knn_k, temperature=e.knn_temperature, num_classes=num_classes
        )
        out[f"{prefix}knn_top1"] = knn["top1"]
    return out


def _finetune_trainer(
    classifier: VideoClassifier, train_set: Dataset, cfg: TaCoRecipeConfig, ctx: RunContext
) -> Trainer:
    from paperzoo.core.config import OptimConfig
    from paperzoo.train.classification import Classification

    f = cfg.finetune
    world = ctx.world_size
    if f.batch_size % world:
        raise ValueError(
            f"finetune.batch_size {f.batch_size} is not divisible by {world} processes"
        )
    steps_per_epoch = max(1, len(train_set) // f.batch_size)
    max_steps = f.max_steps or f.epochs * steps_per_epoch
    optim = OptimConfig(
        name=f.optimizer, lr=f.lr, momentum=0.9, weight_decay=f.weight_decay, schedule="cosine",
        warmup_steps=min(20, max_steps // 10),
    )  # fmt: skip
    trainer_cfg = dataclasses.replace(
        cfg.trainer, max_steps=max_steps, epochs=0,
        checkpoint_every=min(cfg.trainer.checkpoint_every or max_steps, max_steps),
    )  # fmt: skip
    ft_ctx = dataclasses.replace(ctx, out_dir=ctx.out_dir / "finetune")
    return Trainer(
        Classification(classifier), train_set, ft_ctx, trainer_cfg, optim,
        batch_size=f.batch_size // world, num_workers=f.num_workers, seed=cfg.seed,
        drop_last=True,
    )  # fmt: skip


def _labelled_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """``fraction`` of each class (at least one video), the same for every arm and seed."""
    from paperzoo.data.images import stratified_split

    if fraction >= 1.0:
        return torch.arange(len(labels))
    _, keep = stratified_split(labels, fraction, seed)
    return keep


def _finetune_tiny(model: TaCo, data: dict, cfg: TaCoRecipeConfig, ctx: RunContext) -> dict:
    from paperzoo.train.classification import evaluate

    v, f, md = cfg.video, cfg.finetune, cfg.moving_digits
    num_classes = len(md.digits) * md.num_directions
    seed_everything(cfg.seed)
    classifier = VideoClassifier(
        copy.deepcopy(model.encoder_q), model.num_features, num_classes, f.dropout
    )
    train = data["train"]
    keep = _labelled_subset(train.labels, f.label_fraction, f.label_seed)
    clips = dict(num_frames=v.num_frames, stride=v.sampling_rate)
    trainer = _finetune_trainer(
        classifier, Subset(train.sampled(random_start=True, **clips), keep.tolist()), cfg, ctx
    )
    trainer.fit()
    result = evaluate(
        trainer.model.model, data[cfg.eval.split].sampled(random_start=False, **clips),
        batch_size=cfg.eval.batch_size, label_groups={"direction_acc": _direction(md.num_directions)},
    )  # fmt: skip
    return {
        "finetune_top1": result["top1"],
        "finetune_direction_acc": result["direction_acc"],
        "labelled_videos": float(len(keep)),
    }


def _finetune_records(cfg: TaCoRecipeConfig, train: bool) -> tuple[list, list[str]]:
    from paperzoo.data.datasets import read_hmdb51_split, read_ucf101_split

    f = cfg.finetune
    root = Path(f.root)
    if not f.root or not root.is_dir():
        raise FileNotFoundError(
            f"the {f.dataset} fine-tune needs its folder: --set finetune.root=PATH "
            f"(got {f.root!r}); see paperzoo.taco.recipes.FinetuneConfig for the layout"
        )
    if f.dataset == "ucf101":
        name = f"{'train' if train else 'test'}list{f.split:02d}.txt"
        return read_ucf101_split(root / name, root / "classInd.txt", root)
    return read_hmdb51_split(root / "splits", root / "videos", split=f.split, train=train)


def _finetune_paper(model: TaCo, cfg: TaCoRecipeConfig, ctx: RunContext) -> dict:
    """UCF-101 / HMDB-51: fine-tune on the split's train list, test 10 clips x 3 crops."""
    from paperzoo.data.datasets import LabeledVideoDataset
    from paperzoo.data.samplers import ConstantClipsPerVideoSampler, RandomClipSampler
    from paperzoo.data.transforms import video_eval_transform, video_train_transform
    from paperzoo.train.classification import evaluate_multiview

    v, f = cfg.video, cfg.finetune
    train_records, classes = _finetune_records(cfg, train=True)
    test_records, _ = _finetune_records(cfg, train=False)
    seconds = v.num_frames * v.sampling_rate / v.fps
    train_set = LabeledVideoDataset(
        train_records, clip_sampler=RandomClipSampler(seconds), num_frames=v.num_frames,
        transform=video_train_transform(
            v.num_frames, v.crop_size, v.train_scales[0], v.train_scales[1], v.mean, v.std
        ),
    )  # fmt: skip
    seed_everything(cfg.seed)
    classifier = VideoClassifier(
        copy.deepcopy(model.encoder_q), model.num_features, len(classes), f.dropout
    )
    trainer = _finetune_trainer(classifier, train_set, cfg, ctx)
    trainer.fit()
    test_set = LabeledVideoDataset(
        test_records, clip_sampler=ConstantClipsPerVideoSampler(seconds, f.num_clips),
        num_frames=v.num_frames,
        transform=video_eval_transform(
            v.num_frames, v.crop_size, v.short_side, v.mean, v.std, center_crop=f.num_crops == 1
        ),
        num_crops=f.num_crops, crop_size=v.crop_size if f.num_crops > 1 else None,
        return_index=True,
    )  # fmt: skip
    result = evaluate_multiview(
        trainer.model.model, test_set, num_classes=len(classes), batch_size=8,
        num_workers=f.num_workers,
    )  # fmt: skip
    return {"finetune_top1": result["top1"], "finetune_top5": result["top5"]}


# -- the run -----------------------------------------------------------------------------------


def run(cfg: TaCoRecipeConfig, ctx: RunContext) -> RunResult:
    """Pre-train TaCo as ``cfg`` says, then probe and fine-tune; see the module docstring."""
    _check(cfg)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    spec = _spec(cfg)
    tiny = cfg.data.dataset == "moving_digits"
    data: dict = {}
    if tiny:
        splits = ("train", "val", "test") if cfg.eval.split == "test" else ("train", "val")
        data = _moving_digits(cfg, ctx, splits)
        pretrain: Dataset = TaCoClips(data["train"].videos, _views(cfg, spec))
    elif cfg.data.dataset == "kinetics":
        pretrain = _Pretrain(_kinetics_pretrain(cfg, spec))
    else:
        raise ValueError(
            f"unknown data.dataset {cfg.data.dataset!r}; use moving_digits or kinetics"
        )
    batch = dist_utils.per_process_batch(cfg.global_batch_size, cfg.data.batch_size, ctx.world_size)
    seed_everything(cfg.seed)  # the same initial weights (and queue) on every rank
    model = _build_model(cfg, spec)
    initial = copy.deepcopy(model) if tiny and cfg.eval.random_init_baseline else None
    method = TaCoMethod(
        model, contrastive=cfg.taco.contrastive, heads=cfg.taco.heads,
        framework=cfg.taco.framework,
        task_weights=cfg.taco.task_weights() if cfg.taco.heads else None,
        shuffle_bn=cfg.moco.shuffle_bn, bn_splits=cfg.moco.bn_splits,
    )  # fmt: skip
    trainer = Trainer(
        method, pretrain, ctx, cfg.trainer, cfg.optim,
        batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed, drop_last=True,
    )  # fmt: skip
    state = trainer.fit()
    extra: dict[str, Any] = {
        "per_process_batch": batch,
        "train_wall_seconds": round(state.wall_seconds, 2),
        "final_train": dict(state.metrics),
        "tasks": spec.tasks if cfg.taco.heads else {},
    }
    metrics: dict[str, float] = {}
    start = time.perf_counter()
    if tiny and ctx.is_main and (cfg.eval.linear or cfg.eval.knn):
        metrics.update(_probe(model, data, cfg, trainer.device))
        if initial is not None:
            metrics.update(_probe(initial, data, cfg, trainer.device, "random_init_"))
    if cfg.finetune.enabled:
        if tiny:
            metrics.update(_finetune_tiny(model, data, cfg, ctx))
        else:
            metrics.update(_finetune_paper(model, cfg, ctx))
    extra["eval_wall_seconds"] = round(time.perf_counter() - start, 2)
    dist_utils.barrier()
    return RunResult(metrics=metrics, steps=state.step, extra=extra)
