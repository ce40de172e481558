"""The runner of the CAFM recipes: ``run(cfg, ctx) -> RunResult``, one run (one study cell).

1. Data: the bundled MNIST digits in [-1, 1] (stratified test / val / train splits); ImageNet
   (``data.root/train/<class>/``, the ADM centre crop): encoded once with sd-vae-ft-mse into
   latent shards (:func:`paperzoo.gen.latents.extract_latents`) for SiT, or pixels with random
   flips for JiT; or a folder of pre-extracted latents (:class:`paperzoo.gen.latents.LatentDataset`).
2. The base generator: ``checkpoint`` (an official SiT or JiT file, through
   :func:`paperzoo.cafm.convert.load_checkpoint`), or, for the tiny study, stage 1: flow
   matching from scratch with :class:`paperzoo.gen.flow.FlowMatching`, trained once (seed
   ``base.seed``) under the study's shared folder (``_shared/base_seed<k>_<hash of its
   settings>``) and read by every cell, as the paper post-trains one released checkpoint.
3. Post-training into ``OUT/post`` with :class:`paperzoo.train.Trainer`: CAFM (two optimizers,
   :class:`paperzoo.train.gan.GanStepPlan`; the discriminator initialised from the base), or
   continued flow matching (the control), or nothing. The EMA generator is kept.
4. Samples (the same noise in every arm) -> ``samples.png`` and the score: the digit Frechet
   distance against the scored split (``digit_fd``), or FID (FID Inception features of every
   process's samples, against ADM's reference statistics).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from paperzoo.cafm.convert import init_discriminator, load_checkpoint
from paperzoo.cafm.method import CAFM
from paperzoo.cafm.model import (
    TINY_MNIST,
    FlowSamplerMixin,
    cafm_sit_xl_2,
    cafm_tiny_mnist,
    discriminator_like,
)
from paperzoo.cafm.recipes import CAFMRecipeConfig, PostTrainStage
from paperzoo.core.run import RunContext, RunResult
from paperzoo.gen.vae import decode_batched
from paperzoo.train import Trainer, seed_everything
from paperzoo.train import distributed as dist_utils
from paperzoo.train.gan import GanStepPlan

__all__ = [
    "CAFMData",
    "build_data",
    "build_discriminator",
    "build_generator",
    "draw_samples",
    "run",
    "sample_classes",
]


@dataclass
class CAFMData:
    train: Any  # items (x (C, H, W), label)
    scored: torch.Tensor | None  # digits: the scored split's images (N, 1, 28, 28) in [-1, 1]
    num_classes: int
    vae: Any  # the decoder of latent samples; None for pixels
    description: str


def _mnist_splits(cfg: CAFMRecipeConfig) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from paperzoo.data.images import load_mnist_sample, stratified_split

    images, labels = load_mnist_sample()
    rest, test = stratified_split(labels, cfg.test_fraction, seed=cfg.split_seed)
    val_frac = cfg.val_fraction / (1.0 - cfg.test_fraction)
    train_r, val_r = stratified_split(labels[rest], val_frac, seed=cfg.split_seed)
    pixels = images.float().div(127.5).sub(1.0).unsqueeze(1)  # (N, 1, 28, 28) in [-1, 1]
    picks = {"train": rest[train_r], "val": rest[val_r], "test": test}
    return {name: (pixels[idx], labels[idx]) for name, idx in picks.items()}


def _vae(cfg: CAFMRecipeConfig) -> Any:
    from paperzoo.gen.vae import recipe_vae

    return recipe_vae(
        cfg.vae.path, test_config=cfg.vae.tiny_config, scaling_factor=cfg.vae.scaling_factor
    )


def _pixel_transform(size: int, flip_prob: float) -> Any:
    """uint8 (3, H, W) -> (3, size, size) float in [-1, 1]: the ADM centre crop (the official
    ``ImageNetResizeCrop``), a random horizontal flip, Normalize(0.5, 0.5)."""
    import functools

    from torchvision.transforms import v2

    from paperzoo.gen.latents import imagenet_center_crop

    return v2.Compose(
        [
            v2.ToPILImage(),
            v2.Lambda(functools.partial(imagenet_center_crop, size=size)),
            v2.PILToTensor(),
            v2.RandomHorizontalFlip(flip_prob),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=[0.5] * 3, std=[0.5] * 3),
        ]
    )


def _imagenet(cfg: CAFMRecipeConfig, ctx: RunContext) -> CAFMData:
    from paperzoo.data.images import ImageFolderDataset

    if not cfg.data.root:
        raise FileNotFoundError(
            f"{ctx.recipe.name} needs ImageNet: --data PATH (a folder with train/<class>/*.JPEG); "
            "nothing is downloaded"
        )
    root = Path(cfg.data.root).expanduser() / "train"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found: --data must hold train/<class>/<images>")
    if cfg.model == "jit_h_16":  # pixel space
        train = ImageFolderDataset(root, transform=_pixel_transform(cfg.data.image_size,
                                                                    cfg.flip_prob))  # fmt: skip
        return CAFMData(train=train, scored=None, num_classes=len(train.classes), vae=None,
                        description=f"ImageNet pixels: {len(train)} images ({root})")  # fmt: skip
    from torchvision.datasets import ImageFolder

    from paperzoo.gen.latents import LatentDataset, extract_latents, imagenet_transform

    vae = _vae(cfg)
    latents = (
        Path(cfg.latents_dir) if cfg.latents_dir else (ctx.shared_dir or ctx.out_dir) / "_latents"
    )
    info = dist_utils.init_distributed(cfg.trainer.device)
    if info.rank == 0:  # one process encodes; the others wait, then read the shards
        images = ImageFolder(str(root), transform=imagenet_transform(cfg.data.image_size))
        extract_latents(images, vae, latents, batch_size=64, flip=True, device=info.device,
                        num_workers=cfg.data.num_workers, source=str(root))  # fmt: skip
    dist_utils.barrier()
    train = LatentDataset(latents)
    return CAFMData(train=train, scored=None, num_classes=1000, vae=vae,
                    description=f"ImageNet latents: {len(train)} items ({latents})")  # fmt: skip


def build_data(cfg: CAFMRecipeConfig, ctx: RunContext) -> CAFMData:
    """The training set and, for the digits, the real images of the scored split."""
    if cfg.data.dataset == "mnist_sample":
        splits = _mnist_splits(cfg)
        train = TensorDataset(*splits["train"])
        scored = splits[cfg.split][0]
        return CAFMData(
            train=train, scored=scored, num_classes=10, vae=None,
            description=f"mnist_sample: {len(train)} train digits, {len(scored)} {cfg.split}",
        )  # fmt: skip
    if cfg.data.dataset == "imagenet":
        return _imagenet(cfg, ctx)
    if cfg.data.dataset == "latents":
        if not cfg.data.root:
            raise ValueError("--data PATH (a folder of extracted latents) is required")
        from paperzoo.gen.latents import LatentDataset

        train = LatentDataset(cfg.data.root)
        vae = _vae(cfg) if cfg.sample.num_samples > 0 else None
        return CAFMData(
            train=train, scored=None, num_classes=1000, vae=vae,
            description=f"latents: {len(train)} items from {cfg.data.root}",
        )  # fmt: skip
    raise ValueError(
        f"unknown dataset {cfg.data.dataset!r}; use 'mnist_sample', 'imagenet' or 'latents'"
    )


def build_generator(cfg: CAFMRecipeConfig) -> nn.Module:
    """A fresh generator of ``cfg.model`` (with ``cfg.model_args``), ``cfg.checkpoint`` loaded
    when given."""
    from paperzoo.cafm.jit import cafm_jit_h_16

    factories = {
        "sit_xl_2": cafm_sit_xl_2,
        "jit_h_16": cafm_jit_h_16,
        "tiny_mnist": cafm_tiny_mnist,
    }
    if cfg.model not in factories:
        raise ValueError(f"unknown model {cfg.model!r}; use one of {sorted(factories)}")
    generator = factories[cfg.model](**cfg.model_args)
    if cfg.checkpoint:
        load_checkpoint(generator, cfg.checkpoint)
    return generator


def build_discriminator(generator: nn.Module) -> nn.Module:
    """The discriminator of ``generator``'s backbone, initialised from its weights."""
    from paperzoo.cafm.jit import JiT, jit_discriminator_like

    fresh = jit_discriminator_like(generator) if isinstance(generator, JiT) else None
    if fresh is None:
        fresh = discriminator_like(generator)
    return init_discriminator(fresh, generator)


def _phase(ctx: RunContext, out_dir: Path, *, resume: bool | None = None) -> RunContext:
    return dataclasses.replace(
        ctx, out_dir=out_dir, resume=ctx.resume if resume is None else resume
    )


def _batch(cfg: CAFMRecipeConfig, global_batch: int, ctx: RunContext, n: int) -> int:
    batch = dist_utils.per_process_batch(global_batch, cfg.data.batch_size, ctx.world_size)
    return min(batch, n)


def _flow_matching(
    cfg: CAFMRecipeConfig, ctx: RunContext, generator: nn.Module, data: CAFMData, *,
    steps: int, batch_size: int, optim: Any, ema_decay: float, label_dropout: float, seed: int,
) -> tuple[nn.Module, Any]:  # fmt: skip
    """Flow matching on ``generator`` for ``steps``; returns (the EMA generator, the state).

    The shared :class:`~paperzoo.gen.flow.FlowMatching` calls ``generator(x_t, t, y)`` with t in
    [0, 1], 1 = noise, and drops labels through DiT's own label embedder: a paperzoo-convention
    :class:`~paperzoo.cafm.model.CAFMGenerator` (the tiny study's) is exactly that.
    """
    from paperzoo.gen.flow import FlowMatching

    if getattr(generator, "time_convention", None) != "paperzoo":
        raise ValueError(
            "continued flow matching (post.method=flow_matching) is implemented for the tiny "
            "study's paperzoo-convention generator only"
        )
    if label_dropout > 0 and generator.y_embedder.dropout_prob <= 0:
        raise ValueError("label dropout needs the null-class row (class_dropout_prob > 0)")
    generator.y_embedder.dropout_prob = label_dropout
    method = FlowMatching(generator, time_scale=1.0)
    trainer_cfg = dataclasses.replace(cfg.trainer, max_steps=steps, ema_decay=ema_decay)
    trainer = Trainer(
        method, data.train, ctx, trainer_cfg, optim, seed=seed,
        batch_size=_batch(cfg, batch_size, ctx, len(data.train)),
        num_workers=cfg.data.num_workers,
    )  # fmt: skip
    state = trainer.fit()
    return _ema_generator(trainer, generator), state


def _ema_generator(trainer: Trainer, generator: nn.Module) -> nn.Module:
    if trainer.ema is None:
        return generator
    generator.load_state_dict(trainer.ema.module.state_dict())
    return generator


def _base_key(cfg: CAFMRecipeConfig) -> str:
    """A short hash of everything stage 1 depends on, so a changed base is never reused."""
    import hashlib
    import json

    from paperzoo.core.config import to_dict

    keys = ("model", "model_args", "test_fraction", "val_fraction", "split_seed", "base", "data")
    settings = {k: v for k, v in to_dict(cfg).items() if k in keys}
    settings["trainer"] = {k: v for k, v in to_dict(cfg.trainer).items() if k != "progress"}
    settings["architecture"] = {k: repr(v) for k, v in TINY_MNIST.items()}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def base_generator(
    cfg: CAFMRecipeConfig, ctx: RunContext, data: CAFMData
) -> tuple[nn.Module, dict[str, Any]]:
    """``cfg.checkpoint``, or the tiny stage 1: one base model (seed ``base.seed``), trained by
    the first cell that needs it and read back by every other, as every seed of the paper
    post-trains the one released checkpoint."""
    if cfg.checkpoint or cfg.model != "tiny_mnist":
        if not cfg.checkpoint:
            raise ValueError(
                f"model {cfg.model!r} needs checkpoint=PATH (the SiT or JiT to post-train)"
            )
        return build_generator(cfg), {"base": cfg.checkpoint}
    root = (ctx.shared_dir or ctx.out_dir) / f"base_seed{cfg.base.seed}_{_base_key(cfg)}"
    weights = root / "model_ema.safetensors"
    seed_everything(cfg.base.seed)
    generator = build_generator(cfg)
    extra: dict[str, Any] = {"base": str(weights)}
    if not weights.exists():
        b = cfg.base
        resume = any((root / "checkpoints").glob("step_*.pt"))  # a base cut short continues
        _, state = _flow_matching(
            cfg, _phase(ctx, root, resume=resume), generator, data, steps=b.max_steps,
            batch_size=b.batch_size, optim=b.optim, ema_decay=b.ema_decay,
            label_dropout=b.label_dropout, seed=b.seed,
        )  # fmt: skip
        extra["base_wall_seconds"] = round(state.wall_seconds, 2)
    dist_utils.barrier()
    load_checkpoint(generator, weights)
    return generator, extra


def _cafm(
    cfg: CAFMRecipeConfig, ctx: RunContext, generator: nn.Module, data: CAFMData
) -> tuple[nn.Module, Any]:
    p = cfg.post
    seed_everything(cfg.seed + 1)  # the discriminator's fresh head, the same on every rank
    discriminator = build_discriminator(generator)
    method = CAFM(
        generator, discriminator, null_class=generator.null_class, label_dropout=p.label_dropout,
        timesteps=p.timesteps, cp_scale=p.cp_scale, ot_scale=p.ot_scale,
    )  # fmt: skip
    trainer_cfg = dataclasses.replace(cfg.trainer, max_steps=p.max_steps, ema_decay=p.ema_decay)
    trainer = Trainer(
        method, data.train, ctx, trainer_cfg,
        {"generator": p.gen_optim, "discriminator": p.dis_optim}, seed=cfg.seed,
        batch_size=_batch(cfg, p.batch_size, ctx, len(data.train)),
        num_workers=cfg.data.num_workers,
        step_plan=step_plan(p),
        clip_grad_norm={"generator": p.clip_grad_norm, "discriminator": p.clip_grad_norm},
    )  # fmt: skip
    state = trainer.fit()
    return _ema_generator(trainer, generator), state


def post_train(
    cfg: CAFMRecipeConfig, ctx: RunContext, generator: nn.Module, data: CAFMData
) -> tuple[nn.Module, dict[str, Any]]:
    """Stage 2 as ``cfg.post.method`` says, into ``OUT/post``; returns (generator, extras)."""
    p = cfg.post
    post_ctx = _phase(ctx, ctx.out_dir / "post")
    if p.method == "none":
        return generator, {"post_steps": 0, "post_wall_seconds": 0.0}
    if p.method == "cafm":
        generator, state = _cafm(cfg, post_ctx, generator, data)
    elif p.method == "flow_matching":
        generator, state = _flow_matching(
            cfg, post_ctx, generator, data, steps=p.flow_matching_steps,
            batch_size=p.batch_size, optim=p.gen_optim, ema_decay=p.ema_decay,
            label_dropout=p.label_dropout, seed=cfg.seed,
        )  # fmt: skip
    else:
        raise ValueError(f"unknown post.method {p.method!r}; use cafm, flow_matching or none")
    return generator, {"post_steps": state.step, "post_wall_seconds": round(state.wall_seconds, 2)}


def sample_classes(num_samples: int, num_classes: int) -> torch.Tensor:
    """(num_samples,) labels, classes balanced (0, 1, ..., 0, 1, ...)."""
    return torch.arange(num_samples) % num_classes


@torch.no_grad()
def draw_samples(
    cfg: CAFMRecipeConfig, generator: FlowSamplerMixin, labels: torch.Tensor
) -> torch.Tensor:
    """Samples for ``labels`` in batches of ``sample.batch_size``, all noise from one generator
    seeded with ``sample.sample_seed + 1000 * seed`` (the same noise for every arm of a seed);
    on the CPU, so a given seed gives the same noise on any device."""
    s = cfg.sample
    device = next(generator.parameters()).device  # type: ignore[attr-defined]
    rng = torch.Generator().manual_seed(s.sample_seed + 1000 * cfg.seed)
    shape = (generator.in_channels, generator.input_size, generator.input_size)  # type: ignore[attr-defined]
    out = []
    for chunk in labels.split(s.batch_size):
        noise = torch.randn((len(chunk), *shape), generator=rng).to(device)
        out.append(generator.sample(chunk.to(device), noise=noise, steps=s.steps,
                                    cfg_scale=s.cfg_scale, method=s.method).cpu())  # fmt: skip
    return torch.cat(out)


def _check_fid_files(cfg: CAFMRecipeConfig) -> None:
    s = cfg.sample
    if s.num_samples > 0 and not (s.inception_weights and s.reference_npz):
        raise FileNotFoundError(
            "FID needs --set sample.inception_weights=PATH (pt_inception-2015-12-05-6726825d.pth) "
            "and sample.reference_npz=PATH (ADM's VIRTUAL_imagenet256_labeled.npz); "
            "sample.num_samples=0 skips the evaluation"
        )
    for path in (s.inception_weights, s.reference_npz):
        if s.num_samples > 0 and not Path(path).expanduser().is_file():
            raise FileNotFoundError(f"{path} not found")


def _fid(cfg: CAFMRecipeConfig, images: torch.Tensor, device: torch.device) -> float:
    """FID of this process's images (B, 3, H, W) in [-1, 1], all processes' features gathered."""
    from paperzoo.train.generative import fid_against_reference

    s = cfg.sample
    return fid_against_reference(
        images, s.inception_weights, s.reference_npz, batch_size=s.batch_size, device=device
    )


def evaluate(
    cfg: CAFMRecipeConfig, ctx: RunContext, generator: nn.Module, data: CAFMData
) -> dict[str, float]:
    """Samples -> ``samples.png`` (``grid_per_class`` rows of ``grid_classes``) and the digit
    Frechet distance (digits; samples clamped to [-1, 1], the generator's range) or FID (each
    process draws its share of ``num_samples``)."""
    from paperzoo.gen.grid import save_grid

    s = cfg.sample
    if s.num_samples <= 0:
        return {}
    device = next(generator.parameters()).device
    labels = sample_classes(s.num_samples, data.num_classes)
    if data.scored is None:  # FID: every process samples its slice of the labels
        labels = labels[ctx.rank :: ctx.world_size]
    samples = draw_samples(cfg, generator, labels)
    images = (
        samples if data.vae is None else decode_batched(data.vae, samples, s.batch_size, device)
    )
    if ctx.is_main:  # a row per sample index, a column per class
        classes = labels.unique()[: s.grid_classes]
        per_class = [images[labels == c][: s.grid_per_class] for c in classes]
        rows = min(len(group) for group in per_class)
        grid = torch.stack([group[i] for i in range(rows) for group in per_class])
        save_grid(grid, ctx.out_dir / "samples.png", nrow=len(classes))
    if data.scored is None:
        return {"fid": _fid(cfg, images, device)}
    from paperzoo.train.digit_features import digit_frechet_distance

    fake = images.clamp(-1.0, 1.0)
    return {"digit_fd": digit_frechet_distance(fake, data.scored, value_range=(-1, 1))}


def run(cfg: CAFMRecipeConfig, ctx: RunContext) -> RunResult:
    """Base generator, post-training, samples and their score; see the module docstring."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    if cfg.data.dataset != "mnist_sample":
        _check_fid_files(cfg)  # before hours of training, not after
    data = build_data(cfg, ctx)
    generator, extra = base_generator(cfg, ctx, data)
    generator, post = post_train(cfg, ctx, generator, data)
    extra.update(post, data=data.description, scored_split=cfg.split)
    metrics: dict[str, float] = {"post_wall_seconds": float(post["post_wall_seconds"])}
    if data.scored is None or ctx.is_main:  # FID: every process samples its share
        metrics.update(evaluate(cfg, ctx, generator, data))
    dist_utils.barrier()
    return RunResult(metrics=metrics, steps=int(post["post_steps"]), extra=extra)


def step_plan(p: PostTrainStage) -> GanStepPlan:
    """The post-training's D/G schedule (``p.step_phase``: see :class:`PostTrainStage`)."""
    if p.step_phase == "official":
        return GanStepPlan(p.d_steps_per_g, p.d_warmup_steps + 1, phase="absolute")
    return GanStepPlan(p.d_steps_per_g, p.d_warmup_steps)
