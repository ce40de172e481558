"""The runner of the Adversarial Flow Models recipes: ``run(cfg, ctx) -> RunResult``, one run
(one study cell).

1. Data: the bundled MNIST digits in pixel space (tiny: train / val / test splits), or
   ImageNet (``data.root/train`` as an ImageFolder), encoded once with the VAE into sharded
   latents (:func:`paperzoo.gen.latents.extract_latents`) that training then reads.
2. Train with :class:`paperzoo.train.Trainer`: ``method=advflow`` trains generator and
   discriminator with two optimizers (:class:`paperzoo.advflow.method.AdvFlow`);
   ``method=flow_matching`` trains the baseline velocity DiT
   (:class:`paperzoo.gen.flow.FlowMatching`). In a study, the flow-matching training is
   shared by the arms that differ only in the sampler: it lives under the study's shared
   folder, keyed by its own settings and the seed, and the second arm reuses it.
3. Sample ``eval.num_samples`` class-balanced images from the EMA weights (advflow: the
   generator's own ``sample``; flow matching: ``sampler`` with ``sample_steps`` steps), write
   ``samples.png``, and score: ``digit_fd`` (digit Fréchet distance against the scored split)
   or ``fid`` (FID Inception features, all processes' samples gathered, against the ADM
   reference statistics).

Metrics also hold ``train_seconds`` (the wall time of the training the samples come from) and
``nfe`` (network evaluations per sample).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.transforms import v2

from paperzoo.advflow.method import AdvFlow, NoisyClassifierTraining
from paperzoo.advflow.model import build_classifier, build_discriminator, build_generator
from paperzoo.advflow.recipes import AdvFlowRecipeConfig
from paperzoo.core.config import to_dict
from paperzoo.core.io import atomic_write_json
from paperzoo.core.run import RunContext, RunResult
from paperzoo.gen.vae import decode_batched
from paperzoo.train import Trainer, seed_everything
from paperzoo.train import distributed as dist_utils
from paperzoo.train.gan import GanStepPlan

__all__ = ["AdvFlowData", "build_data", "run", "sample_images"]

# The paper pipeline test's latent size: a 2-block random VAE halves 16 px images to 8 x 8.
_LATENT_TEST = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=64, depth=2,
                    num_heads=4, num_classes=1000, learn_sigma=False, class_dropout_prob=0.0)  # fmt: skip


@dataclass
class AdvFlowData:
    train: Any  # items (x (C, H, W), label)
    scored: torch.Tensor | None  # digits: the scored split's images (N, 1, 28, 28) in [-1, 1]
    num_classes: int
    vae: Any  # None for pixel-space data
    description: str


def _digits(cfg: AdvFlowRecipeConfig) -> AdvFlowData:
    from torch.utils.data import TensorDataset

    from paperzoo.data.images import load_mnist_sample, stratified_split
    from paperzoo.train.digit_features import digit_validation_split

    images, labels = load_mnist_sample()
    x = images.float().div(127.5).sub(1.0).unsqueeze(1)
    # Test: the digit classifier's own 500 held-out digits (it never trained on them).
    rest, test = digit_validation_split()
    train_part, val_part = stratified_split(labels[rest], 500 / len(rest), seed=1)
    train, val = rest[train_part], rest[val_part]
    scored = test if cfg.split == "test" else val
    return AdvFlowData(
        train=TensorDataset(x[train], labels[train]), scored=x[scored], num_classes=10,
        vae=None,
        description=f"MNIST sample: {len(train)} train, {len(val)} val, {len(test)} test; "
        f"scored: {cfg.split}",
    )  # fmt: skip


def _vae(cfg: AdvFlowRecipeConfig) -> Any:
    from paperzoo.gen.vae import recipe_vae

    return recipe_vae(
        cfg.vae.path, test_config=cfg.vae.tiny_config, scaling_factor=cfg.vae.scaling_factor
    )


def _imagenet(cfg: AdvFlowRecipeConfig, ctx: RunContext) -> AdvFlowData:
    from torchvision.datasets import ImageFolder

    from paperzoo.gen.latents import LatentDataset, extract_latents, imagenet_transform

    if not cfg.data.root:
        raise FileNotFoundError(
            "advflow_paper needs ImageNet: pass --data PATH (a folder with train/<class>/*.JPEG); "
            "nothing is downloaded"
        )
    root = Path(cfg.data.root).expanduser() / "train"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found: --data must hold train/<class>/<images>")
    vae = _vae(cfg)
    if cfg.method == "classifier" and cfg.classifier.augment:
        # the official classifier trains on augmented images encoded each step, not on latents
        info = dist_utils.init_distributed(cfg.trainer.device)
        train = ImageFolder(str(root), transform=classifier_image_transform(cfg.data.image_size))
        return AdvFlowData(
            train=train, scored=None, num_classes=1000, vae=vae.to(info.device),
            description=f"ImageNet images, augmented and encoded each step: {len(train)} items",
        )  # fmt: skip
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
    return AdvFlowData(
        train=train, scored=None, num_classes=1000, vae=vae,
        description=f"ImageNet latents: {len(train)} items ({latents})",
    )  # fmt: skip


def classifier_image_transform(size: int = 256) -> v2.Compose:
    """The classifier's training images (official ``train_adversarial_flow_classifier.py``):
    kornia's ``RandomAffine`` (p 0.8, ±10°, translate 0.3, scale 1-1.3, bilinear, reflection
    padding) on the full image, back to 8-bit PIL, the ADM crop, a horizontal flip (p 0.5) and
    Normalize(0.5, 0.5): (3, size, size) in [-1, 1]. Draws from torch's global generator, which
    the Trainer seeds per sample."""
    from kornia.augmentation import RandomAffine

    from paperzoo.gen.latents import imagenet_center_crop

    affine = RandomAffine(degrees=10, translate=(0.3, 0.3), scale=(1.0, 1.3), p=0.8,
                          resample="bilinear", padding_mode="reflection", keepdim=True)  # fmt: skip
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            affine,
            v2.ToPILImage(),
            v2.Lambda(functools.partial(imagenet_center_crop, size=size)),
            v2.RandomHorizontalFlip(0.5),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
        ]
    )


def build_data(cfg: AdvFlowRecipeConfig, ctx: RunContext) -> AdvFlowData:
    if cfg.data.dataset == "mnist_sample":
        return _digits(cfg)
    if cfg.data.dataset == "imagenet":
        return _imagenet(cfg, ctx)
    raise ValueError(f"unknown data.dataset {cfg.data.dataset!r}; use 'mnist_sample' or 'imagenet'")


def _generator(cfg: AdvFlowRecipeConfig) -> nn.Module:
    a = cfg.advflow
    steps = None if a.kind == "any" else a.steps
    if cfg.model == "latent_test":
        return build_generator("tiny", kind=a.kind, steps=steps, repeat=a.repeat,
                               output_space="latent", **_LATENT_TEST)  # fmt: skip
    return build_generator(cfg.model, kind=a.kind, steps=steps, repeat=a.repeat)


def _discriminator(cfg: AdvFlowRecipeConfig) -> nn.Module:
    use_time = cfg.advflow.kind != "1nfe" and cfg.advflow.kind != "deep"
    if cfg.model == "latent_test":
        return build_discriminator("tiny", use_time=use_time, **_LATENT_TEST)
    return build_discriminator(cfg.model, use_time=use_time)


def _classifier(cfg: AdvFlowRecipeConfig) -> nn.Module:
    if cfg.model == "latent_test":
        return build_classifier("tiny", **_LATENT_TEST)
    return build_classifier(cfg.classifier.model)


def _load(model: nn.Module, path: str, what: str) -> nn.Module:
    from paperzoo.advflow.convert import load_checkpoint

    if not Path(path).expanduser().is_file():
        raise FileNotFoundError(f"{what} {path!r} not found")
    return load_checkpoint(model, Path(path).expanduser())


def _phase(ctx: RunContext, out_dir: Path) -> RunContext:
    return dataclasses.replace(ctx, out_dir=out_dir)


def train_advflow(
    cfg: AdvFlowRecipeConfig, ctx: RunContext, data: AdvFlowData
) -> tuple[nn.Module, Any]:
    """Train generator and discriminator; returns (the EMA generator, the final TrainState)."""
    a = cfg.advflow
    seed_everything(cfg.seed)  # the same initial weights on every rank
    generator, discriminator = _generator(cfg), _discriminator(cfg)
    # The guided stage starts from the unguided one's files (the EMA starts from G as loaded).
    if a.generator_checkpoint:
        _load(generator, a.generator_checkpoint, "advflow.generator_checkpoint")
    if a.discriminator_checkpoint:
        _load(discriminator, a.discriminator_checkpoint, "advflow.discriminator_checkpoint")
    classifier = None
    if a.cg_scale > 0:
        if not cfg.classifier.checkpoint:
            raise FileNotFoundError(
                "classifier guidance (advflow.cg_scale > 0) needs --set classifier.checkpoint="
                "PATH (the official classifier.pth or advflow_paper_classifier's "
                "train/model_ema.safetensors)"
            )
        classifier = _load(_classifier(cfg), cfg.classifier.checkpoint, "classifier.checkpoint")
    method = AdvFlow(
        generator, discriminator, gp_scale=a.gp_scale, gp_fraction=a.gp_fraction,
        gp_eps=a.gp_eps, centering=a.centering, ot_start=a.ot_start, ot_end=a.ot_end,
        ot_steps=a.ot_steps or a.max_steps, grad_norm=a.grad_norm, classifier=classifier,
        cg_scale=a.cg_scale, cg_flow=a.cg_flow, cg_interpolate=a.cg_interpolate,
        cg_timestep_lo=a.cg_timestep_lo, cg_timestep_hi=a.cg_timestep_hi,
        augment_p=a.augment_p,
    )  # fmt: skip
    batch = dist_utils.per_process_batch(a.batch_size, cfg.data.batch_size, ctx.world_size)
    trainer = Trainer(
        method, data.train, _phase(ctx, ctx.out_dir / "train"),
        dataclasses.replace(cfg.trainer, max_steps=a.max_steps, epochs=0,
                            ema_reload_every=a.ema_reload_every),
        {"generator": a.generator_optim, "discriminator": a.discriminator_optim},
        batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed,
        step_plan=GanStepPlan(d_steps_per_g=a.d_steps_per_g),
        clip_grad_norm={"generator": a.clip_generator, "discriminator": a.clip_discriminator},
    )  # fmt: skip
    state = trainer.fit()
    generator = trainer.ema.module if trainer.ema is not None else method.generator
    return generator, state


def train_classifier(
    cfg: AdvFlowRecipeConfig, ctx: RunContext, data: AdvFlowData
) -> tuple[nn.Module, Any]:
    """Train the noisy-latent classifier; returns (the EMA classifier, the final TrainState)."""
    c = cfg.classifier
    seed_everything(cfg.seed)
    encoder = None
    if cfg.data.dataset == "imagenet" and c.augment:  # images: encode them in the step
        from paperzoo.gen.vae import encode

        encoder = functools.partial(encode, data.vae, sample=True)  # official: posterior.sample()
    method = NoisyClassifierTraining(_classifier(cfg), encoder=encoder)
    batch = dist_utils.per_process_batch(c.batch_size, cfg.data.batch_size, ctx.world_size)
    trainer = Trainer(
        method, data.train, _phase(ctx, ctx.out_dir / "train"),
        dataclasses.replace(cfg.trainer, max_steps=c.max_steps, epochs=0,
                            ema_decay=c.ema_decay, clip_grad_norm=c.clip),
        c.optim, batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed,
    )  # fmt: skip
    state = trainer.fit()
    classifier = trainer.ema.module if trainer.ema is not None else method.classifier
    return classifier, state


def _velocity_model(cfg: AdvFlowRecipeConfig) -> nn.Module:
    """The baseline's DiT: the generator's size, with a time embedder (t·1000, as advflow)."""
    from paperzoo.advflow.model import TINY
    from paperzoo.gen.dit import DiT, dit_kwargs

    if cfg.model == "tiny":
        return DiT(**TINY)
    if cfg.model == "latent_test":
        return DiT(**_LATENT_TEST)
    return DiT(**dit_kwargs(cfg.model, input_size=32, in_channels=4, num_classes=1000,
                            learn_sigma=False, class_dropout_prob=0.0))  # fmt: skip


def _flow_dir(cfg: AdvFlowRecipeConfig, ctx: RunContext) -> Path:
    """Where the flow-matching training goes: in a study, a folder under the shared one keyed
    by everything the training depends on (not the sampler), so the arms that only sample
    differently reuse one training; otherwise ``OUT/train``."""
    if ctx.shared_dir is None:
        return ctx.out_dir / "train"
    keyed = {"model": cfg.model, "flow": to_dict(cfg.flow), "trainer": to_dict(cfg.trainer),
             "data": to_dict(cfg.data)}  # fmt: skip
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    return ctx.shared_dir / f"flow_matching_{digest}" / f"seed{cfg.seed}"


def train_flow_matching(
    cfg: AdvFlowRecipeConfig, ctx: RunContext, data: AdvFlowData
) -> tuple[nn.Module, float]:
    """Train (or reuse) the baseline; returns (the EMA velocity DiT, training wall seconds)."""
    from paperzoo.core.checkpoint import load_state_dict_strict
    from paperzoo.gen.flow import FlowMatching
    from paperzoo.train.checkpointing import list_checkpoints

    out = _flow_dir(cfg, ctx)
    done = out / "done.json"
    seed_everything(cfg.seed)
    model = _velocity_model(cfg)
    if done.exists():
        from safetensors.torch import load_file

        weights = out / (
            "model_ema.safetensors" if cfg.trainer.ema_decay > 0 else "model.safetensors"
        )
        load_state_dict_strict(model, load_file(str(weights)), source=str(weights))
        return model, float(json.loads(done.read_text())["train_seconds"])
    f = cfg.flow
    batch = dist_utils.per_process_batch(f.batch_size, cfg.data.batch_size, ctx.world_size)
    # A study cell continues a shared training that a killed cell left behind.
    resume = ctx.resume or bool(list_checkpoints(out / "checkpoints"))
    trainer = Trainer(
        FlowMatching(model), data.train, dataclasses.replace(ctx, out_dir=out, resume=resume),
        dataclasses.replace(cfg.trainer, max_steps=f.max_steps, epochs=0), f.optim,
        batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed,
    )  # fmt: skip
    state = trainer.fit()
    if ctx.is_main:
        atomic_write_json(done, {"train_seconds": state.wall_seconds, "steps": state.step})
    dist_utils.barrier()
    ema = trainer.ema.module if trainer.ema is not None else model
    return ema, state.wall_seconds


def sample_images(
    cfg: AdvFlowRecipeConfig, model: nn.Module, labels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Samples (B, C, H, W) for ``labels``: the generator's own sampler (advflow), or the
    flow-matching ODE with ``cfg.sampler`` and ``cfg.sample_steps``."""
    if cfg.method == "advflow":
        return model.sample(labels, generator=generator, steps=cfg.sample_steps)
    from paperzoo.gen.flow import FlowMatching

    if cfg.sampler not in ("euler", "heun"):
        raise ValueError(f"flow matching samples with 'euler' or 'heun', not {cfg.sampler!r}")
    return FlowMatching(model).sample(labels, steps=cfg.sample_steps, method=cfg.sampler,
                                      generator=generator)  # fmt: skip


def _nfe(cfg: AdvFlowRecipeConfig) -> int:
    if cfg.method == "advflow":
        return cfg.sample_steps
    return cfg.sample_steps * (2 if cfg.sampler == "heun" else 1)


def _draw(
    cfg: AdvFlowRecipeConfig, model: nn.Module, num_classes: int, device: torch.device
) -> torch.Tensor:
    """This process's share of ``eval.num_samples`` class-balanced samples (labels i mod K),
    drawn in batches from one generator seeded by the run's seed and the rank."""
    world, rank = dist_utils.get_world_size(), dist_utils.get_rank()
    if cfg.eval.num_samples % world:
        raise ValueError(
            f"eval.num_samples={cfg.eval.num_samples} must divide by {world} processes"
        )
    labels = (torch.arange(cfg.eval.num_samples) % num_classes)[rank::world].to(device)
    generator = torch.Generator(device=device).manual_seed(10_000 * (cfg.seed + 1) + rank)
    model.eval()
    out = [sample_images(cfg, model, y, generator) for y in labels.split(cfg.eval.batch_size)]
    return torch.cat(out)


def _fid(cfg: AdvFlowRecipeConfig, images: torch.Tensor) -> float:
    """FID of this process's images (B, 3, H, W) in [-1, 1], all processes' features gathered."""
    from paperzoo.train.generative import fid_against_reference

    if not (cfg.eval.inception_weights and cfg.eval.reference_npz):
        raise FileNotFoundError(
            "FID needs --set eval.inception_weights=PATH (pt_inception-2015-12-05-6726825d.pth) "
            "and eval.reference_npz=PATH (ADM's VIRTUAL_imagenet256_labeled.npz)"
        )
    return fid_against_reference(
        images, cfg.eval.inception_weights, cfg.eval.reference_npz, batch_size=cfg.eval.batch_size
    )


def run(cfg: AdvFlowRecipeConfig, ctx: RunContext) -> RunResult:
    """Train the generator ``cfg.method`` names, sample and score; see the module docstring."""
    from paperzoo.gen.grid import save_grid

    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    data = build_data(cfg, ctx)
    extra: dict[str, Any] = {"data": data.description}
    if cfg.method == "advflow":
        model, state = train_advflow(cfg, ctx, data)
        train_seconds, steps = state.wall_seconds, state.step
    elif cfg.method == "flow_matching":
        model, train_seconds = train_flow_matching(cfg, ctx, data)
        steps = cfg.flow.max_steps
    elif cfg.method == "classifier":  # trains only: the guided stage reads the EMA file
        _, state = train_classifier(cfg, ctx, data)
        extra["classifier"] = str(ctx.out_dir / "train" / "model_ema.safetensors")
        return RunResult(metrics={"train_seconds": state.wall_seconds}, steps=state.step,
                         extra=extra)  # fmt: skip
    else:
        raise ValueError(
            f"unknown method {cfg.method!r}: 'advflow', 'flow_matching' or 'classifier'"
        )
    metrics = {"train_seconds": train_seconds, "nfe": float(_nfe(cfg))}
    if cfg.eval.num_samples == 0:  # train only (e.g. to sample and score elsewhere)
        return RunResult(metrics=metrics, steps=steps, extra=extra)
    device = next(model.parameters()).device
    samples = _draw(cfg, model, data.num_classes, device)
    images = samples if data.vae is None else decode_batched(data.vae, samples, cfg.eval.batch_size)
    if ctx.is_main:
        grid = images[: cfg.eval.grid]
        save_grid(grid, ctx.out_dir / "samples.png", nrow=min(len(grid), data.num_classes))
    if data.scored is not None:
        from paperzoo.train.digit_features import digit_frechet_distance

        metrics["digit_fd"] = digit_frechet_distance(
            images.clamp(-1, 1).cpu(), data.scored, value_range=(-1, 1)
        )
        extra["scored_split"] = cfg.split
    else:
        metrics["fid"] = _fid(cfg, images)
    dist_utils.barrier()
    return RunResult(metrics=metrics, steps=steps, extra=extra)
