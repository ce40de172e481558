"""The runner of the MoCo recipes: ``run(cfg, ctx) -> RunResult``, one run (one study cell).

1. Build the data (:mod:`paperzoo.mocov2.data`); bad data stops the run before training.
2. Build the MoCo model from ``cfg.seed``, keep a copy of its random initialisation when
   ``eval.random_init_baseline`` is on, and train it with :class:`paperzoo.train.Trainer` (one
   process, or DDP under torchrun; ``--resume`` continues from ``OUT/checkpoints``).
3. Evaluate frozen pooled features of the query encoder:
   - ``eval.linear_protocol="tiny"`` (bundled MNIST): the fast linear probe and weighted kNN
     of :mod:`paperzoo.train.eval`, fitted on the train split and scored on ``eval.split``,
     for the trained encoder and, optionally, for its random initialisation.
   - ``"main_lincls"`` (ImageNet folder): MoCo's linear classification protocol through the
     Trainer: frozen backbone, fc on RandomResizedCrop+flip views, SGD lr 30, 100 epochs,
     x0.1 at 60/80; top-1/top-5 on ``val/`` with resize-256 / center-crop-224.

The tiny recipe is a study (arms x seeds, :func:`paperzoo.mocov2.recipes.tiny_study`): the
study runner calls this once per cell and decides the claims; nothing here loops over seeds.
Metrics are percentages: ``linear_top1``, ``knn_top1`` and, with the baseline on,
``random_init_linear_top1`` and ``random_init_knn_top1``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import torch

from paperzoo.core import create_model
from paperzoo.core.run import RunContext, RunResult
from paperzoo.mocov2.data import MoCoData, ViewsFn, build_datasets
from paperzoo.mocov2.method import MoCoMethod
from paperzoo.mocov2.model import MoCo, resnet_pooled_features
from paperzoo.mocov2.recipes import MoCoRecipeConfig
from paperzoo.train import Trainer, seed_everything
from paperzoo.train import distributed as dist_utils

__all__ = ["pretrain_and_evaluate", "run"]


def _per_process_batch(cfg: MoCoRecipeConfig, world_size: int) -> int:
    batch = dist_utils.per_process_batch(cfg.global_batch_size, cfg.data.batch_size, world_size)
    if batch % cfg.moco.bn_splits:
        raise ValueError(
            f"per-process batch {batch} is not divisible by moco.bn_splits={cfg.moco.bn_splits}"
        )
    if batch * world_size > cfg.moco.queue_size:
        raise ValueError(
            f"global batch {batch * world_size} exceeds the queue (moco.queue_size="
            f"{cfg.moco.queue_size}); the queue must hold at least one batch of keys"
        )
    return batch


def _build_model(cfg: MoCoRecipeConfig) -> MoCo:
    m = cfg.moco
    return create_model(
        cfg.model, dim=m.dim, queue_size=m.queue_size, momentum=m.momentum,
        temperature=m.temperature, mlp=m.mlp,
    )  # fmt: skip


def _probe(
    model: MoCo, data: MoCoData, cfg: MoCoRecipeConfig, device: torch.device, prefix: str
) -> dict[str, float]:
    """The tiny protocol: fast linear probe + kNN on precomputed pooled features."""
    from paperzoo.train.eval import extract_features, knn_accuracy, linear_probe

    model.to(device)
    x_train, y_train = extract_features(model, data.eval_train, batch_size=cfg.eval.batch_size)
    x_test, y_test = extract_features(model, data.eval_test, batch_size=cfg.eval.batch_size)
    probe = linear_probe(
        x_train, y_train, x_test, y_test, protocol="tiny", num_classes=data.num_classes,
        seed=cfg.seed,
    )  # fmt: skip
    out = {f"{prefix}linear_top1": probe.top1, f"{prefix}linear_train_top1": probe.train_top1}
    if cfg.eval.knn:
        knn = knn_accuracy(
            x_train, y_train, x_test, y_test, k=cfg.eval.knn_k,
            temperature=cfg.eval.knn_temperature, num_classes=data.num_classes,
        )  # fmt: skip
        out[f"{prefix}knn_top1"] = knn["top1"]
    return out


def _main_lincls(
    model: MoCo, data: MoCoData, cfg: MoCoRecipeConfig, ctx: RunContext
) -> dict[str, float]:
    """MoCo's linear classification (``main_lincls.py``) through the Trainer; every rank runs it."""
    from paperzoo.train.eval import (
        LinearClassifierMethod,
        accuracy,
        extract_features,
        moco_linear_optim_config,
    )

    world, global_batch = ctx.world_size, cfg.eval.linear_batch_size
    if global_batch % world:
        raise ValueError(
            f"eval.linear_batch_size {global_batch} is not divisible by {world} processes"
        )
    backbone = model.encoder_q
    method = LinearClassifierMethod(
        backbone, feature_dim=model.num_features, num_classes=data.num_classes,
        feature_fn=functools.partial(resnet_pooled_features, backbone),
    )  # fmt: skip
    steps_per_epoch = max(1, len(data.linear_train) // global_batch)
    optim = dataclasses.replace(
        moco_linear_optim_config(),
        name=cfg.eval.linear_optimizer,
        lr=cfg.eval.linear_lr,
        weight_decay=cfg.eval.linear_weight_decay,
        schedule=cfg.eval.linear_schedule,
        base_batch=cfg.eval.linear_base_batch,
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
    return pretrain_and_evaluate(cfg, ctx)


def _moco_method(model: MoCo, cfg: MoCoRecipeConfig) -> MoCoMethod:
    return MoCoMethod(model, shuffle_bn=cfg.moco.shuffle_bn, bn_splits=cfg.moco.bn_splits)


def pretrain_and_evaluate(
    cfg: MoCoRecipeConfig,
    ctx: RunContext,
    *,
    views: ViewsFn | None = None,
    make_method: Callable[[MoCo, Any], MoCoMethod] | None = None,
    measure: Callable[[MoCoMethod, MoCoData, Any, Trainer], dict[str, float]] | None = None,
) -> RunResult:
    """:func:`run` with the hooks papers built on MoCo need (asymsiam):

    - ``views(cfg, mean, std)``: the pre-training transform of one image (default: two crops);
    - ``make_method(model, cfg)``: the training method (default: :class:`MoCoMethod`);
    - ``measure(method, data, cfg, trainer)``: extra metrics of the trained method, called on
      every rank (it may use collectives) before the probes; rank 0's are reported.
    """
    data = build_datasets(cfg, views)  # bad data fails here, before any model or process group
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    batch = _per_process_batch(cfg, ctx.world_size)
    seed_everything(cfg.seed)  # the same initial weights (and queue) on every rank
    model = _build_model(cfg)
    initial = copy.deepcopy(model) if cfg.eval.random_init_baseline else None
    method = (make_method or _moco_method)(model, cfg)
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
    if measure is not None:
        metrics.update(measure(method, data, cfg, trainer))
    if cfg.eval.enabled:
        start = time.perf_counter()
        if cfg.eval.linear_protocol == "main_lincls":
            metrics.update(_main_lincls(model, data, cfg, ctx))
        elif ctx.is_main:
            metrics.update(_probe(model, data, cfg, trainer.device, ""))
            if initial is not None:
                metrics.update(_probe(initial, data, cfg, trainer.device, "random_init_"))
        extra["eval_wall_seconds"] = round(time.perf_counter() - start, 2)
    # Undecodable files met during this run (the datasets log each one as it is skipped).
    skipped = {name: int(d.skipped.count) for name, d in data.counters.items()}
    if skipped:
        extra["skipped_files"] = skipped
    dist_utils.barrier()
    return RunResult(metrics=metrics, steps=state.step, extra=extra)
