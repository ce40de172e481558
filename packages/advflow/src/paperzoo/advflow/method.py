"""The Adversarial Flow Models training objective, as a two-optimizer paperzoo Trainer method.

Lin, Yang, Lin, Chen, Fan, "Adversarial Flow Models", arXiv:2511.22475. Follows the official
training code (ByteDance-Seed/Adversarial-Flow-Models: ``train_adversarial_flow.py``,
``AdversarialFlowTrainer.prepare_input`` / ``training_step``, and ``grad_norm.py``), which was
read for this file.

With x_t = (1 - t)·x + t·ε (t = 1 noise), one training pair is (x_src, x_tgt) on the same
data x with *independent* noises. The generator maps x_src (at t_src) to x̂_tgt (at t_tgt);
the discriminator (class- and, for multi-step, t_tgt-conditioned) tells x̂_tgt from the real
x_tgt. With w = clamp(|t_src - t_tgt|, 0.001) (w = 1 for 1NFE, t_src = 1, t_tgt = 0):

- D: softplus(-(D(real) - D(fake))) (relativistic, paired per sample)
  + gp·w·(D(x + σn) - D(x))²/σ² on real (R1) and fake (R2), finite differences, σ = 0.01, on
  the first 25% of the batch, + 0.01·(D(real) + D(fake))² (logit centering).
- G: softplus(-(D(fake) - D(real))) + (ot/w)·mean‖x̂_tgt - x_src‖², ot cosine 0.2 -> 0.005.
- The D-gradient reaching G's output is divided by sqrt(EMA_0.9(‖g‖²·numel)) (official
  ``GradientNormalization``: the EMA starts at 0, without bias correction, and is averaged
  over processes).

Trainer steps alternate D and G (``GanStepPlan(d_steps_per_g=1)``); the OT schedule is
indexed by the trainer step, which counts both, as the official loop's ``step`` does.

**The guided stage** (official ``train_adversarial_flow_imagenet.py``, ``prepare_input`` and
``training_step``; ``configs/train/afm/train_afm_1nfe_cg.yaml``), both off by default:

- Classifier guidance (``classifier`` given, ``cg_scale`` > 0): G's loss also gets
  mean(cg·CE(C(x_cg, t_cg), y)·[lo <= t_cg <= hi]) from a frozen noisy-latent classifier C.
  t_cg ~ U(lo, hi) (``cg_flow``, official ``adversarial.cg_flow``) or t_cg = t_tgt;
  x_cg = (1 - t_cg)·x̂_tgt + t_cg·ε (``cg_interpolate``, official ``cls.flow``) or x̂_tgt.
- Discriminator augmentation (``augment_p`` > 0): kornia RandomTranslate(p, (0, 0.3),
  nearest) then RandomErasing(p, scale (0.1, 0.5)) three times, on the channel-concatenation
  of real and fake targets so both get the same transform, before D in both steps (the R1/R2
  perturbations are added to the augmented samples; OT and CG use the unaugmented x̂_tgt).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AdvFlow",
    "GradientNormalization",
    "NoisyClassifierTraining",
    "augment_pair",
    "classifier_guidance_loss",
    "cosine_schedule",
    "discriminator_losses",
    "generator_losses",
    "sample_timesteps",
]


def cosine_schedule(step: int, start: float, end: float, steps: int) -> float:
    """``start`` at step 0 to ``end`` at step ``steps - 1`` (held after), along half a cosine.

    The official ``common/schedules.py`` ``CosineSchedule``: t = step / (steps - 1), value
    end + (start - end)·(1 + cos(πt))/2, and ``end`` from step ``steps - 1`` on.
    """
    if step >= steps - 1:
        return end
    progress = max(step, 0) / (steps - 1)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


class _GradientNormalizationFn(torch.autograd.Function):
    """Identity forward; backward divides the gradient by sqrt(EMA(‖g‖²·numel)) + eps.

    Hand-written: no library has this paper's normalisation (official ``grad_norm.py``).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, square_avg: torch.Tensor, decay: float, eps: float
    ) -> torch.Tensor:
        ctx.square_avg, ctx.decay, ctx.eps = square_avg, decay, eps
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        # ×numel rather than ÷sqrt(numel) later: independent of the per-process batch.
        sq = grad.detach().float().square().sum() * grad.numel()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Averaged, not summed: the statistic stays at one process's scale.
            torch.distributed.all_reduce(sq, op=torch.distributed.ReduceOp.SUM)
            sq = sq / torch.distributed.get_world_size()
        square_avg = ctx.square_avg
        square_avg.lerp_(sq.to(square_avg.dtype), 1.0 - ctx.decay)
        return grad / (square_avg.sqrt() + ctx.eps).to(grad.dtype), None, None, None


class GradientNormalization(nn.Module):
    """Normalise the gradient flowing back through this point (official ``GradientNormalization``).

    ``square_avg`` is a buffer, so it is saved in checkpoints and a resumed run continues with
    the same statistic.
    """

    def __init__(self, decay: float = 0.9, eps: float = 1e-8) -> None:
        super().__init__()
        self.decay, self.eps = decay, eps
        self.register_buffer("square_avg", torch.zeros((), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GradientNormalizationFn.apply(x, self.square_avg, self.decay, self.eps)


def sample_timesteps(
    steps: int | None, batch: int, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(t_src, t_tgt), each (B,): ``steps`` = N picks t_src in {1, 1 - 1/N, ...} and t_tgt =
    t_src - 1/N (N = 1: 1NFE, t_src = 1, t_tgt = 0); ``None`` (any-step): t_src ~ U(0, 1),
    t_tgt = U(0, 1)·t_src."""
    if steps is None:
        t_src = torch.rand(batch, device=device)
        return t_src, torch.rand(batch, device=device) * t_src
    grid = torch.arange(1.0, 0.0, -1.0 / steps, device=device)[:steps]
    t_src = grid[torch.randint(0, steps, (batch,), device=device)]
    return t_src, t_src - 1.0 / steps


def _interpolate(x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t.view(-1, *([1] * (x.ndim - 1)))
    return (1.0 - t) * x + t * noise


def discriminator_losses(
    logits_real: torch.Tensor,
    logits_fake: torch.Tensor,
    logits_real_gp: torch.Tensor,
    logits_fake_gp: torch.Tensor,
    weighting: torch.Tensor,
    *,
    gp_scale: float,
    gp_eps: float,
    centering: float,
) -> dict[str, torch.Tensor]:
    """The D loss terms from logits (B,) and the gp logits (G,) of the first G samples
    perturbed by ``gp_eps``·n; ``weighting`` (B,) is w = clamp(|t_src - t_tgt|, 0.001)."""
    g = logits_real_gp.shape[0]
    scale = gp_scale * weighting[:g] / gp_eps**2
    adv = F.softplus(-(logits_real - logits_fake)).mean()
    r1 = (logits_real_gp - logits_real[:g]).square().mul(scale).mean()
    r2 = (logits_fake_gp - logits_fake[:g]).square().mul(scale).mean()
    cp = (logits_real + logits_fake).square().mul(centering).mean()
    return {"adv": adv, "r1": r1, "r2": r2, "cp": cp}


def generator_losses(
    logits_real: torch.Tensor,
    logits_fake: torch.Tensor,
    x_pred: torch.Tensor,
    x_src: torch.Tensor,
    weighting: torch.Tensor,
    *,
    ot_scale: float,
) -> dict[str, torch.Tensor]:
    """The G loss terms: the relativistic adversarial loss and the OT regulariser
    (ot/w)·mean over pixels of (x̂_tgt - x_src)², averaged over the batch."""
    adv = F.softplus(-(logits_fake - logits_real)).mean()
    per_sample = (x_pred - x_src).square().flatten(1).mean(1)
    ot = per_sample.mul(ot_scale / weighting).mean()
    return {"adv": adv, "ot": ot}


def classifier_guidance_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    t_cg: torch.Tensor,
    *,
    cg_scale: float,
    lo: float,
    hi: float,
) -> torch.Tensor:
    """mean over the batch of cg_scale·CE(logits, labels), 0 where t_cg is outside [lo, hi]."""
    per_sample = F.cross_entropy(logits, labels, reduction="none").mul(cg_scale)
    inside = (t_cg >= lo) & (t_cg <= hi)
    return torch.where(inside, per_sample, torch.zeros_like(per_sample)).mean()


def augment_pair(
    real: torch.Tensor, fake: torch.Tensor, p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official discriminator augmentation, one random transform per sample shared by its
    real and fake: translate by up to 30% (nearest), then three random erasings of 10-50% of
    the area, each applied with probability ``p`` (kornia). ``p`` <= 0: the inputs unchanged.

    Real and fake are concatenated along channels so the per-sample transform is drawn once
    (the official "HACK"; it relies on no op treating channels independently)."""
    if p <= 0:
        return real, fake
    from kornia.augmentation import RandomErasing, RandomTranslate

    augment = nn.Sequential(
        RandomTranslate(p=p, translate_x=(0.0, 0.3), translate_y=(0.0, 0.3), resample="NEAREST"),
        RandomErasing(p=p, scale=(0.1, 0.5)),
        RandomErasing(p=p, scale=(0.1, 0.5)),
        RandomErasing(p=p, scale=(0.1, 0.5)),
    )
    out = augment(torch.cat([real, fake], dim=1))
    real_aug, fake_aug = out.chunk(2, dim=1)
    return real_aug, fake_aug


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Record the forward without gradients for ``module``'s parameters (D in a G step)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class AdvFlow(nn.Module):
    """Adversarial flow training of ``generator`` against ``discriminator``.

    ``generator`` is an :class:`~paperzoo.advflow.model.AdvFlowGenerator` (its ``steps``: 1,
    N or ``None`` for any-step; ``predict_target(x_src, y, t_src, t_tgt) -> x̂_tgt``);
    ``discriminator`` an :class:`~paperzoo.advflow.model.AdvFlowDiscriminator`. Batches are
    ``(x, y)``: data (latents or images, (B, C, H, W)) and class labels (B,). ``ot_steps``
    is the length of the OT cosine in trainer steps (D and G steps together; official 1M).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        gp_scale: float = 0.25,
        gp_fraction: float = 0.25,
        gp_eps: float = 0.01,
        centering: float = 0.01,
        ot_start: float = 0.2,
        ot_end: float = 0.005,
        ot_steps: int = 1_000_000,
        grad_norm: bool = True,
        grad_norm_decay: float = 0.9,
        classifier: nn.Module | None = None,
        cg_scale: float = 0.0,
        cg_flow: bool = True,
        cg_interpolate: bool = False,
        cg_timestep_lo: float = 0.0,
        cg_timestep_hi: float = 0.1,
        augment_p: float = 0.0,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        # The guided stage's frozen classifier (never optimised; gradients pass through it to
        # G's output only).
        self.classifier = classifier
        if classifier is not None:
            classifier.requires_grad_(False).eval()
        self.cg_scale, self.cg_flow, self.cg_interpolate = cg_scale, cg_flow, cg_interpolate
        self.cg_timestep_lo, self.cg_timestep_hi = cg_timestep_lo, cg_timestep_hi
        self.augment_p = augment_p
        self.gp_scale, self.gp_fraction, self.gp_eps = gp_scale, gp_fraction, gp_eps
        self.centering = centering
        self.ot_start, self.ot_end, self.ot_steps = ot_start, ot_end, ot_steps
        self.grad_norm: nn.Module = (
            GradientNormalization(grad_norm_decay) if grad_norm else nn.Identity()
        )

    # -- the Trainer's interface --------------------------------------------------------------

    def optimizer_param_groups(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "discriminator": [{"params": list(self.discriminator.parameters())}],
            "generator": [{"params": list(self.generator.parameters())}],
        }

    def trainable_module(self) -> nn.Module:
        return self.generator

    def ema_module(self) -> nn.Module:
        return self.generator

    def ot_scale(self, step: int) -> float:
        return cosine_schedule(step, self.ot_start, self.ot_end, self.ot_steps)

    def _pair(self, batch: Any) -> dict[str, torch.Tensor]:
        """Timesteps, the source and the real target of one batch, with independent noises."""
        x, y = batch[0], batch[1]
        t_src, t_tgt = sample_timesteps(self.generator.steps, x.shape[0], x.device)
        x_src = _interpolate(x, torch.randn_like(x), t_src)
        x_tgt = _interpolate(x, torch.randn_like(x), t_tgt)
        weighting = (t_src - t_tgt).abs().clamp_min(0.001)
        pair = {"y": y, "t_src": t_src, "t_tgt": t_tgt, "x_src": x_src, "x_tgt": x_tgt,
                "w": weighting}  # fmt: skip
        if self.classifier is not None:  # drawn only when guided: the unguided stream is kept
            lo, hi = self.cg_timestep_lo, self.cg_timestep_hi
            if self.cg_flow:  # official: rand·(lo - hi) + hi
                pair["t_cg"] = torch.rand(x.shape[0], device=x.device) * (lo - hi) + hi
            else:
                pair["t_cg"] = t_tgt.clone()
            pair["noise_cg"] = torch.randn_like(x)
        return pair

    def train(self, mode: bool = True) -> AdvFlow:
        super().train(mode)
        if self.classifier is not None:
            self.classifier.eval()  # frozen: always in eval mode, as the official
        return self

    def _d(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.discriminator(x, y, t if self.discriminator.uses_time else None)

    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, torch.Tensor]:
        p = self._pair(batch)
        if optimizer == "discriminator":
            return self._discriminator_step(p)
        if optimizer == "generator":
            return self._generator_step(p, step)
        raise ValueError(f"unknown optimizer {optimizer!r}: 'discriminator' or 'generator'")

    def _discriminator_step(self, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            fake = self.generator.predict_target(p["x_src"], p["y"], p["t_src"], p["t_tgt"])
        real, fake = augment_pair(p["x_tgt"], fake, self.augment_p)
        y, t = p["y"], p["t_tgt"]
        b = real.shape[0]
        g = max(round(b * self.gp_fraction), 1)
        real_gp = real[:g] + self.gp_eps * torch.randn_like(real[:g])
        fake_gp = fake[:g] + self.gp_eps * torch.randn_like(fake[:g])
        # One forward over all four sets, as the official code does.
        logits = self._d(
            torch.cat([real, fake, real_gp, fake_gp]), torch.cat([y, y, y[:g], y[:g]]),
            torch.cat([t, t, t[:g], t[:g]]),
        )  # fmt: skip
        lr, lf, lr_gp, lf_gp = logits.split([b, b, g, g])
        terms = discriminator_losses(
            lr, lf, lr_gp, lf_gp, p["w"], gp_scale=self.gp_scale, gp_eps=self.gp_eps,
            centering=self.centering,
        )  # fmt: skip
        return {
            "loss": sum(terms.values()),  # type: ignore[dict-item]
            **{k: v.detach() for k, v in terms.items()},
            "logits_real": lr.detach().mean(),
            "logits_fake": lf.detach().mean(),
        }

    def _generator_step(self, p: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        fake = self.generator.predict_target(p["x_src"], p["y"], p["t_src"], p["t_tgt"])
        ot = self.ot_scale(step)
        real_aug, fake_aug = augment_pair(p["x_tgt"], fake, self.augment_p)
        with _frozen(self.discriminator):
            with torch.no_grad():
                lr = self._d(real_aug, p["y"], p["t_tgt"])
            lf = self._d(self.grad_norm(fake_aug), p["y"], p["t_tgt"])
        terms = generator_losses(lr, lf, fake, p["x_src"], p["w"], ot_scale=ot)
        loss = terms["adv"] + terms["ot"]
        if self.classifier is not None:
            terms["cg"] = self._guidance(fake, p)
            loss = loss + terms["cg"]
        return {
            "loss": loss,
            **{k: v.detach() for k, v in terms.items()},
            "ot_scale": torch.tensor(ot),
            "logits_real": lr.detach().mean(),
            "logits_fake": lf.detach().mean(),
        }

    def _guidance(self, fake: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """The classifier-guidance term of the G loss (the classifier's weights get no grad)."""
        assert self.classifier is not None
        t_cg = p["t_cg"]
        x_cg = _interpolate(fake, p["noise_cg"], t_cg) if self.cg_interpolate else fake
        logits = self.classifier(x_cg, t_cg)
        return classifier_guidance_loss(
            logits, p["y"], t_cg, cg_scale=self.cg_scale, lo=self.cg_timestep_lo,
            hi=self.cg_timestep_hi,
        )  # fmt: skip


class NoisyClassifierTraining(nn.Module):
    """Training of the guided stage's noisy-latent classifier (official
    ``train_adversarial_flow_classifier.py``, ``prepare_input`` / ``training_step``): for a
    batch ``(x, y)`` (latents, or images that ``encoder`` encodes), t ~ U(0, 1) per sample, x_t = (1 - t)·x + t·ε, loss CE(C(x_t, t), y)."""

    def __init__(
        self,
        classifier: nn.Module,
        encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.classifier = classifier
        # images -> latents (the frozen VAE), kept out of the module tree and so out of the
        # checkpoints; None: the batches are latents already
        self.encoder = encoder

    def trainable_module(self) -> nn.Module:
        return self.classifier

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        x, y = batch[0], batch[1]
        if self.encoder is not None:
            with torch.no_grad():
                x = self.encoder(x).float()
        t = torch.rand(x.shape[0], device=x.device)
        logits = self.classifier(_interpolate(x, torch.randn_like(x), t), t)
        loss = F.cross_entropy(logits, y)
        accuracy = (logits.detach().argmax(1) == y).float().mean()
        return {"loss": loss, "accuracy": accuracy}
