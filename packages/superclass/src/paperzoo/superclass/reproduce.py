"""The runner of the SuperClass recipes: ``run(cfg, ctx) -> RunResult``, one run (one study cell).

1. Build the data (:mod:`paperzoo.superclass.data`); bad data stops the run before training.
2. Build the model from ``cfg.seed`` and pre-train it with :class:`paperzoo.train.Trainer`
   (one process, or DDP under torchrun; ``--resume`` continues from ``OUT/checkpoints``, the
   IDF statistics included, since they are model buffers):
   ``method=superclass``: :class:`~paperzoo.superclass.method.SuperClassMethod`;
   ``method=clip``: open_clip's CLIP with the same image tower (the baseline).
3. ``method=superclass`` with ``lit.enabled``: the LiT stage, open_clip's CLIP on the locked
   SuperClass tower, trained through the Trainer into ``OUT/lit``.
4. Evaluate on rank 0: linear probe on frozen pooled features (before any projection) of the
   image tower, and zero-shot top-1 with the CLIP (or LiT) text tower and
   ``open_clip.build_zero_shot_classifier``.

Metrics are percentages: ``linear_top1``, ``linear_top5`` and ``zeroshot_top1``,
``zeroshot_top5``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from typing import Any

import torch
from torch import nn

from paperzoo.core import create_model
from paperzoo.core.run import RunContext, RunResult
from paperzoo.superclass.data import CaptionData, build_datasets, tokenizer
from paperzoo.superclass.method import ClipMethod, SuperClassMethod
from paperzoo.superclass.model import SuperClass, lit_from_superclass, pooled_image_features
from paperzoo.superclass.recipes import SuperClassRecipeConfig
from paperzoo.train import Trainer, seed_everything
from paperzoo.train import distributed as dist_utils

__all__ = ["build_method", "linear_probe_metrics", "run", "zero_shot_metrics"]


def build_method(cfg: SuperClassRecipeConfig) -> nn.Module:
    """The pre-training method of ``cfg.method``, its model built from the current RNG."""
    if cfg.method == "superclass":
        model = create_model(cfg.model)
        if not isinstance(model, SuperClass):
            raise TypeError(f"model {cfg.model!r} is not a SuperClass model")
        if cfg.grad_checkpointing:
            model.visual.set_grad_checkpointing(True)
        return SuperClassMethod(model, idf=cfg.idf)
    if cfg.method == "clip":
        clip = create_model(cfg.clip_model)
        if clip.context_length < cfg.context_length:
            raise ValueError(
                f"{cfg.clip_model} has a context of {clip.context_length} tokens, fewer than "
                f"context_length={cfg.context_length}"
            )
        if cfg.grad_checkpointing:
            clip.set_grad_checkpointing(True)
        return ClipMethod(clip)
    raise ValueError(f"method must be 'superclass' or 'clip', got {cfg.method!r}")


def _lit_stage(
    model: SuperClass, data: CaptionData, cfg: SuperClassRecipeConfig, ctx: RunContext, batch: int
) -> nn.Module:
    """LiT: lock the SuperClass tower, train an open_clip text tower on the same pairs."""
    lit = cfg.lit
    seed_everything(cfg.seed + 1)  # the same text-tower initialisation on every rank
    clip = lit_from_superclass(
        model, lit.text, lit.embed_dim, pool_type=lit.pool_type,
        unlocked_groups=lit.unlocked_groups,
    )  # fmt: skip
    if clip.context_length < cfg.context_length:
        raise ValueError(f"lit.text {lit.text!r} has a context shorter than context_length")
    optim = dataclasses.replace(cfg.optim, lr=lit.lr, warmup_steps=lit.warmup_steps)
    trainer_cfg = dataclasses.replace(
        cfg.trainer,
        max_steps=lit.max_steps,
        epochs=0,
        checkpoint_every=min(cfg.trainer.checkpoint_every, lit.max_steps),
    )
    lit_ctx = dataclasses.replace(ctx, out_dir=ctx.out_dir / "lit")
    trainer = Trainer(
        ClipMethod(clip), data.pretrain, lit_ctx, trainer_cfg, optim, batch_size=batch,
        num_workers=cfg.data.num_workers, collate_fn=data.collate, seed=cfg.seed,
    )  # fmt: skip
    trainer.fit()
    return clip


def linear_probe_metrics(
    visual: nn.Module, data: CaptionData, cfg: SuperClassRecipeConfig
) -> dict[str, float]:
    """Linear probe on frozen pooled features of ``visual`` (train split fit, scored split)."""
    from paperzoo.train.eval import extract_features, linear_probe

    fn = functools.partial(pooled_image_features, visual)
    kwargs = {"batch_size": cfg.eval.batch_size, "feature_fn": fn,
              "num_workers": cfg.data.num_workers}  # fmt: skip
    x_train, y_train = extract_features(visual, data.probe_train, **kwargs)
    x_test, y_test = extract_features(visual, data.probe_test, **kwargs)
    probe = linear_probe(
        x_train, y_train, x_test, y_test, protocol=cfg.eval.linear_protocol,
        num_classes=len(data.classnames) or None, seed=cfg.seed,
    )  # fmt: skip
    return {
        "linear_top1": probe.top1,
        "linear_top5": probe.top5,
        "linear_train_top1": probe.train_top1,
    }


@torch.no_grad()
def zero_shot_metrics(
    clip: nn.Module, data: CaptionData, cfg: SuperClassRecipeConfig
) -> dict[str, float]:
    """Zero-shot top-1/top-5: cosine of image embeddings to prompt-ensembled class embeddings."""
    from open_clip import build_zero_shot_classifier

    from paperzoo.train.eval import accuracy, extract_features

    device = next(clip.parameters()).device
    was_training = clip.training
    clip.eval()
    try:
        weights = build_zero_shot_classifier(
            clip, tokenizer(cfg.context_length), list(data.classnames), list(data.templates),
            num_classes_per_batch=None, device=device,
        )  # fmt: skip
        features, labels = extract_features(
            clip, data.probe_test, batch_size=cfg.eval.batch_size,
            feature_fn=functools.partial(clip.encode_image, normalize=True),
            num_workers=cfg.data.num_workers,
        )  # fmt: skip
    finally:
        clip.train(was_training)
    top1, top5 = accuracy(features @ weights.float().cpu(), labels, topk=(1, 5))
    return {"zeroshot_top1": top1, "zeroshot_top5": top5}


def _idf_summary(
    model: SuperClass, data: CaptionData, cfg: SuperClassRecipeConfig
) -> dict[str, Any]:
    """The running statistics after training, and the tokens they weigh most and least."""
    n = float(model.num_samples.item())
    if n == 0:
        return {"num_samples": 0.0}
    w = model.idf_weights(cfg.global_batch_size).flatten()
    seen = model.cap_fq.flatten() > 0
    order = torch.argsort(w.masked_fill(~seen, float("nan")).nan_to_num(-1.0), descending=True)
    tok = tokenizer(cfg.context_length)

    def word(i: int) -> str:
        return tok.decoder[int(i)].replace("</w>", "")

    ranked = [int(i) for i in order if seen[i]]
    return {
        "num_samples": n,
        "tokens_seen": int(seen.sum()),
        "highest_idf": {word(i): round(float(w[i]), 3) for i in ranked[:5]},
        "lowest_idf": {word(i): round(float(w[i]), 3) for i in ranked[-5:]},
    }


def run(cfg: SuperClassRecipeConfig, ctx: RunContext) -> RunResult:
    """Pre-train (and LiT) as ``cfg`` says, then evaluate; see the module docstring."""
    data = build_datasets(cfg, ctx.shared_dir)  # bad data fails here, before any process group
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    batch = dist_utils.per_process_batch(cfg.global_batch_size, cfg.data.batch_size, ctx.world_size)
    seed_everything(cfg.seed)  # the same initial weights on every rank
    method = build_method(cfg)
    initial = None
    if cfg.eval.random_init_baseline and cfg.eval.enabled and data.probe_test is not None:
        tower = method.model.visual if isinstance(method, SuperClassMethod) else method.clip.visual
        initial = copy.deepcopy(tower)
    trainer = Trainer(
        method, data.pretrain, ctx, cfg.trainer, cfg.optim, batch_size=batch,
        num_workers=cfg.data.num_workers, collate_fn=data.collate, seed=cfg.seed, drop_last=True,
    )  # fmt: skip
    state = trainer.fit()
    extra: dict[str, Any] = {
        "data": data.description,
        "per_process_batch": batch,
        "train_wall_seconds": round(state.wall_seconds, 2),
        "final_train": dict(state.metrics),
        **data.extra,
    }
    metrics: dict[str, float] = {}
    evaluate = cfg.eval.enabled and data.probe_test is not None
    start = time.perf_counter()
    clip: nn.Module | None = None
    if isinstance(method, SuperClassMethod):
        extra["idf"] = _idf_summary(method.model, data, cfg)
        if ctx.world_size > 1:  # the statistics are all-reduced: every rank must hold the same
            stats = torch.cat([method.model.cap_fq, method.model.num_samples], dim=1)
            everyone = dist_utils.all_gather(stats)
            extra["idf"]["max_difference_across_ranks"] = float((everyone - stats).abs().max())
        visual = method.model.visual
        if cfg.lit.enabled and evaluate and cfg.eval.zeroshot:
            t0 = time.perf_counter()
            clip = _lit_stage(method.model, data, cfg, ctx, batch)
            extra["lit_wall_seconds"] = round(time.perf_counter() - t0, 2)
    else:
        clip = method.clip
        visual = clip.visual
    if evaluate and ctx.is_main:
        metrics.update(linear_probe_metrics(visual, data, cfg))
        if cfg.eval.zeroshot and clip is not None:
            metrics.update(zero_shot_metrics(clip, data, cfg))
        if initial is not None:
            floor = linear_probe_metrics(initial.to(trainer.device), data, cfg)
            metrics.update({f"random_init_{k}": v for k, v in floor.items()})
    extra["eval_wall_seconds"] = round(time.perf_counter() - start, 2)
    if data.counters:  # undecodable files met during this run, summed over the ranks
        names = sorted(data.counters)
        counts = torch.tensor([float(data.counters[n].skipped.count) for n in names])
        counts = dist_utils.all_reduce_mean(counts) * ctx.world_size
        extra["skipped_files"] = {n: round(float(c)) for n, c in zip(names, counts)}
    dist_utils.barrier()
    return RunResult(metrics=metrics, steps=state.step, extra=extra)
