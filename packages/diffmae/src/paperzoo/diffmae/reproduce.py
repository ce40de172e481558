"""The runner of the DiffMAE recipes: ``run(cfg, ctx) -> RunResult``, one run (one study cell).

1. Build the data (:mod:`paperzoo.diffmae.data`); a missing dataset fails before training.
2. Pre-train (``pretrain.method``: DiffMAE with the ``pretrain.decoder``, MAE, or plain
   diffusion) with :class:`paperzoo.train.Trainer` into ``OUT/pretrain`` (one process, or DDP
   under torchrun; ``--resume`` continues there).
3. Fine-tune the encoder (MAE's protocol: layer-wise lr decay, average pooling) into
   ``OUT/finetune`` and score top-1 on the scored split (video: multi-view).
4. On rank 0: the inpainting error of the pre-trained model on held-out images (MSE over the
   masked pixels, fixed masks) and ``OUT/inpainting.png``.

Metrics: ``finetune_top1`` (%), ``inpaint_mse`` (in the data's units), ``pretrain_loss``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from paperzoo.core.run import RunContext, RunResult
from paperzoo.diffmae.data import DiffMAEData, build_data
from paperzoo.diffmae.inpaint import fixed_masks, inpaint, masked_pixel_mse, save_inpainting_grid
from paperzoo.diffmae.method import Finetune, build_method, ddpm_scheduler, encoder_state_dict
from paperzoo.diffmae.model import build_classifier, build_pretraining_model
from paperzoo.diffmae.recipes import DiffMAERecipeConfig
from paperzoo.train import Trainer, seed_everything
from paperzoo.train import distributed as dist_utils

__all__ = ["inpainting_error", "run"]


def _phase(ctx: RunContext, name: str) -> RunContext:
    return dataclasses.replace(ctx, out_dir=ctx.out_dir / name)


def _trainer_cfg(cfg: DiffMAERecipeConfig, stage: Any) -> Any:
    return dataclasses.replace(cfg.trainer, epochs=stage.epochs, max_steps=stage.max_steps)


def _scheduler(cfg: DiffMAERecipeConfig) -> Any:
    return ddpm_scheduler(cfg.pretrain.num_train_timesteps, cfg.pretrain.beta_schedule)


def _pretraining_model(cfg: DiffMAERecipeConfig) -> torch.nn.Module:
    pt = cfg.pretrain
    kwargs: dict[str, Any] = {
        "decoder_embed_dim": pt.decoder_embed_dim, "decoder_depth": pt.decoder_depth,
        "decoder_num_heads": pt.decoder_num_heads,
    }  # fmt: skip
    if pt.method != "mae":
        kwargs["decoder"] = pt.decoder
    if pt.mask_ratio > 0:
        kwargs["mask_ratio"] = pt.mask_ratio
    return build_pretraining_model(cfg.model, pt.method, **kwargs)


def inpainting_error(
    model: Any, data: DiffMAEData, cfg: DiffMAERecipeConfig, device: torch.device
) -> float:
    """MSE over the masked pixels of ``data.heldout``, each image with a mask from
    ``inpaint.mask_seed`` (the same for every arm), the sampler seeded by ``cfg.seed``."""
    images = data.heldout
    ratio = cfg.pretrain.mask_ratio or model.mask_ratio
    ids_keep, ids_mask = fixed_masks(len(images), model.num_patches, ratio, cfg.inpaint.mask_seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    total, count, step = 0.0, 0, cfg.inpaint.batch_size
    for i in range(0, len(images), step):
        x = images[i : i + step].to(device)
        keep, mask = ids_keep[i : i + step].to(device), ids_mask[i : i + step].to(device)
        filled = inpaint(model, x, keep, mask, scheduler=_scheduler(cfg), generator=generator,
                         num_inference_steps=cfg.inpaint.inference_steps)  # fmt: skip
        total += masked_pixel_mse(filled, x, mask, model) * len(x)
        count += len(x)
    return total / count


def _evaluate(model: torch.nn.Module, data: DiffMAEData, cfg: DiffMAERecipeConfig) -> float:
    from paperzoo.train.classification import evaluate, evaluate_multiview

    if data.video:
        return evaluate_multiview(model, data.scored, num_classes=data.num_classes,
                                  batch_size=cfg.video.eval_batch_size,
                                  num_workers=cfg.data.num_workers)["top1"]  # fmt: skip
    return evaluate(model, data.scored, batch_size=256, num_workers=cfg.data.num_workers)["top1"]


def _finetune(
    cfg: DiffMAERecipeConfig, ctx: RunContext, data: DiffMAEData, encoder: dict | None
) -> tuple[torch.nn.Module, Any]:
    from paperzoo.data.transforms import MixupCutmix

    ft = cfg.finetune
    seed_everything(cfg.seed + 1)  # the same head initialisation on every rank
    model = build_classifier(cfg.model, num_classes=data.num_classes,
                             drop_path_rate=ft.drop_path_rate)  # fmt: skip
    if encoder is not None:
        result = model.load_state_dict(encoder, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith(("fc_norm.", "head."))]
        if missing or result.unexpected_keys:
            raise RuntimeError(f"encoder weights do not fit: {missing} {result.unexpected_keys}")
    elif cfg.stage == "finetune":
        from paperzoo.diffmae.convert import load_checkpoint

        load_checkpoint(model, cfg.pretrained)
    mixup = None
    if ft.mixup_alpha > 0 or ft.cutmix_alpha > 0:
        mixup = MixupCutmix(data.num_classes, ft.mixup_alpha, ft.cutmix_alpha,
                            label_smoothing=ft.label_smoothing)  # fmt: skip
    method = Finetune(
        model, layer_decay=ft.layer_decay, weight_decay=ft.optim.weight_decay, mixup=mixup,
        label_smoothing=0.0 if mixup else ft.label_smoothing,
    )  # fmt: skip
    batch = dist_utils.per_process_batch(ft.batch_size, cfg.data.batch_size, ctx.world_size)
    state = Trainer(
        method, data.finetune, _phase(ctx, "finetune"), _trainer_cfg(cfg, ft), ft.optim,
        batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed,
    ).fit()  # fmt: skip
    return model, state


def run(cfg: DiffMAERecipeConfig, ctx: RunContext) -> RunResult:
    """Pre-train and/or fine-tune as ``cfg`` says, then evaluate; see the module docstring."""
    if cfg.stage == "finetune" and not cfg.pretrained:
        raise ValueError("stage=finetune needs pretrained=PATH (a DiffMAE or MAE checkpoint)")
    data = build_data(cfg)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    metrics: dict[str, float] = {}
    extra: dict[str, Any] = {"data": data.description, **data.extra}
    steps, encoder, pretrained = 0, None, None
    if cfg.stage in ("both", "pretrain"):
        seed_everything(cfg.seed)  # the same initial weights on every rank
        pretrained = _pretraining_model(cfg)
        method = build_method(pretrained, scheduler=_scheduler(cfg))
        pt = cfg.pretrain
        batch = dist_utils.per_process_batch(pt.batch_size, cfg.data.batch_size, ctx.world_size)
        state = Trainer(
            method, data.pretrain, _phase(ctx, "pretrain"), _trainer_cfg(cfg, pt), pt.optim,
            batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed,
        ).fit()  # fmt: skip
        steps += state.step
        metrics["pretrain_loss"] = float(state.metrics.get("loss", float("nan")))
        extra["pretrain_wall_seconds"] = round(state.wall_seconds, 2)
        encoder = encoder_state_dict(pretrained.state_dict())
    if cfg.stage in ("both", "finetune", "scratch") and cfg.finetune.enabled:
        classifier, state = _finetune(cfg, ctx, data, encoder)
        steps += state.step
        extra["finetune_wall_seconds"] = round(state.wall_seconds, 2)
        metrics["finetune_top1"] = _evaluate(classifier, data, cfg)
    if pretrained is not None and cfg.inpaint.enabled and ctx.is_main:
        device = next(pretrained.parameters()).device
        metrics["inpaint_mse"] = inpainting_error(pretrained, data, cfg, device)
        grid = data.heldout[: cfg.inpaint.grid_images].to(device)
        save_inpainting_grid(
            pretrained, grid, ctx.out_dir / "inpainting.png", num_samples=cfg.inpaint.grid_samples,
            num_inference_steps=cfg.inpaint.inference_steps, seed=cfg.inpaint.mask_seed,
            value_range=data.value_range, scheduler=_scheduler(cfg),
            mask_ratio=cfg.pretrain.mask_ratio or None,
        )  # fmt: skip
    extra["scored_split"] = cfg.split if cfg.data.dataset == "mnist_sample" else "val"
    dist_utils.barrier()
    return RunResult(metrics=metrics, steps=steps, extra=extra)
