"""The CAFM post-training objective: a least-squares GAN on the discriminator's JVP along the flow.

Paper: "Continuous Adversarial Flow Models", Shanchuan Lin, Ceyuan Yang, Zhijie Lin, Hao Chen,
Haoqi Fan, arXiv 2604.11521. Follows the official trainer
(github.com/ByteDance-Seed/Adversarial-Flow-Models, ``train_continuous_adversarial_flow_imagenet.py``:
``prepare_input``, ``is_dis_step``, ``training_step``) and its JVP wrapper
(``models/cafm/jvp/discriminator.py``).

Convention (paperzoo's, the official trainer's): x_t = (1 - t) x + t eps, t = 1 is noise, and the
velocity is v = eps - x. G is a pretrained velocity model v_theta(x_t, t, y); D(x_t, t, y) -> (B,)
scores. D's directional derivative along a trajectory with velocity v,

    D'(v) = d/ds D(x_t + s v, t + s, y) at s = 0 = jvp(D, (x_t, t), (v, 1)),

is D's "logit": the real tangent is eps - x (the true velocity), the fake one v_theta(x_t, t).

- D loss: (D'_real - 1)^2 + (D'_fake + 1)^2 + cp * D(x_t, t)^2, cp = 0.001 (G not trained).
- G loss: (D'_fake - 1)^2 + ot * mean(v_theta^2), ot = 0 in both official recipes; the gradient
  reaches G through the tangent (D's parameters frozen).

Labels are dropped to the null class with probability 0.1 before both networks see them
(the official ``prepare_input``); t ~ U(0, 1) (SiT) or sigmoid(N(0.8, 0.8)) (JiT, "logit-normal"
in the official code's t direction). The step plan (D-only warm-up, then 16 D steps per G step)
is :class:`paperzoo.train.gan.GanStepPlan`, run by the shared Trainer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = [
    "CAFM",
    "discriminator_jvp",
    "discriminator_loss",
    "generator_loss",
    "interpolate",
    "sample_timesteps",
]

Timesteps = Literal["uniform", "logit_normal"]


def interpolate(x: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """x_t = (1 - t) x + t noise; x, noise (B, ...), t (B,) in [0, 1]."""
    t = t.view(-1, *([1] * (x.ndim - 1)))
    return (1 - t) * x + t * noise


def sample_timesteps(
    n: int, mode: Timesteps, *, device: torch.device | str = "cpu", generator: Any = None
) -> Tensor:
    """(n,) training times: ``uniform`` U(0, 1) (SiT), ``logit_normal`` sigmoid(0.8 z + 0.8)
    (JiT's Table 9 schedule, shifted +0.8 for t = 1 at the noise end, as the official code)."""
    if mode == "uniform":
        return torch.rand(n, device=device, generator=generator)
    if mode == "logit_normal":
        return (torch.randn(n, device=device, generator=generator) * 0.8 + 0.8).sigmoid()
    raise ValueError(f"unknown timesteps {mode!r}; use 'uniform' (SiT) or 'logit_normal' (JiT)")


def discriminator_jvp(
    discriminator: Callable[[Tensor, Tensor, Tensor], Tensor],
    x_t: Tensor,
    t: Tensor,
    y: Tensor,
    tangents: Tensor,
) -> tuple[Tensor, Tensor]:
    """D(x_t, t, y) and its directional derivatives along (tangent, dt = 1).

    x_t (B, C, H, W), t (B,), y (B,); ``tangents`` (B, C, H, W), or (K, B, C, H, W) for K tangents
    in one pass (``torch.func.vmap`` over the tangents: the primal runs once, as the official
    ``DiscriminatorJVP``). Returns ``out`` (B,) and ``dout`` (B,) or (K, B). Differentiable
    (double backward) w.r.t. D's parameters and the tangents.
    """
    ones = torch.ones_like(t)

    def d(x: Tensor, s: Tensor) -> Tensor:
        return discriminator(x, s, y)

    def along(dx: Tensor) -> tuple[Tensor, Tensor]:
        return torch.func.jvp(d, (x_t, t), (dx, ones))

    # Forward-mode AD has no rule for the fused SDPA kernels (flash / memory-efficient: "forward
    # AD ... not implemented" on CPU and CUDA); the math kernel is made of differentiable ops.
    # The official trainer also enables only the math kernel.
    with sdpa_kernel(SDPBackend.MATH):
        if tangents.ndim == x_t.ndim:
            return along(tangents)
        out, dout = torch.func.vmap(along)(tangents)
    return out[0], dout


def discriminator_loss(
    out: Tensor, d_real: Tensor, d_fake: Tensor, cp_scale: float = 0.001
) -> dict[str, Tensor]:
    """(D'_real - 1)^2 + (D'_fake + 1)^2 + cp * D^2, each a batch mean; all inputs (B,)."""
    real = (d_real - 1).square().mean()
    fake = (d_fake + 1).square().mean()
    cp = out.square().mean() * cp_scale
    return {"loss": real + fake + cp, "adv_real": real, "adv_fake": fake, "cp": cp}


def generator_loss(d_fake: Tensor, velocity: Tensor, ot_scale: float = 0.0) -> dict[str, Tensor]:
    """(D'_fake - 1)^2 (batch mean) + ot * mean(v^2) (over every element, as the official)."""
    adv = (d_fake - 1).square().mean()
    ot = velocity.square().mean() * ot_scale
    return {"loss": adv + ot, "adv": adv, "ot": ot}


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Build the graph without ``module``'s parameters (the official toggles requires_grad the
    same way), so a G step spends no work on D's gradients."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class CAFM(nn.Module):
    """CAFM post-training as a two-optimizer paperzoo method (``discriminator``, ``generator``).

    Args:
        generator: ``velocity(x_t, t, y) -> v`` in paperzoo's convention (e.g.
            :class:`paperzoo.cafm.model.CAFMGenerator`); labels equal to ``null_class`` select
            the unconditional row and are never dropped inside.
        discriminator: ``forward(x_t, t, y) -> (B,)`` in paperzoo's convention (e.g.
            :class:`paperzoo.cafm.model.CAFMDiscriminator`); no randomness inside (it runs under
            ``vmap``).
        null_class: the label of the unconditional row (1000 for ImageNet).
        label_dropout: probability that a label becomes ``null_class`` (0.1).
        timesteps: ``uniform`` (SiT) or ``logit_normal`` (JiT).
        cp_scale, ot_scale: the weights of D's centering penalty (0.001) and of G's
            velocity-norm term (0).

    Batches are ``(x, y)``: data (B, C, H, W) float (latents or pixels in [-1, 1]) and int labels.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        null_class: int,
        label_dropout: float = 0.1,
        timesteps: Timesteps = "uniform",
        cp_scale: float = 0.001,
        ot_scale: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_dropout <= 1.0:
            raise ValueError(f"label_dropout must be in [0, 1], got {label_dropout}")
        sample_timesteps(1, timesteps)  # fail early on an unknown mode
        self.generator = generator
        self.discriminator = discriminator
        self.null_class = null_class
        self.label_dropout = label_dropout
        self.timesteps = timesteps
        self.cp_scale = cp_scale
        self.ot_scale = ot_scale

    def optimizer_param_groups(self) -> dict[str, list[dict[str, Any]]]:
        def trainable(m: nn.Module) -> list[Tensor]:
            return [p for p in m.parameters() if p.requires_grad]

        return {
            "discriminator": [{"params": trainable(self.discriminator)}],
            "generator": [{"params": trainable(self.generator)}],
        }

    def trainable_module(self) -> nn.Module:
        return self.generator

    def ema_module(self) -> nn.Module:
        return self.generator

    def prepare(self, batch: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(x, y) -> (x, y with labels dropped to the null class, noise, t), drawn from torch's
        global RNG (the Trainer checkpoints it, so a resumed run draws the same)."""
        x, y = batch[0], batch[1]
        drop = torch.rand(y.shape[0], device=y.device) < self.label_dropout
        y = torch.where(drop, torch.full_like(y, self.null_class), y)
        t = sample_timesteps(x.shape[0], self.timesteps, device=x.device)
        return x, y, torch.randn_like(x), t.to(x.dtype)

    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Tensor]:
        x, y, noise, t = self.prepare(batch)
        x_t = interpolate(x, noise, t)
        if optimizer == "discriminator":
            with torch.no_grad():
                v_fake = self.generator.velocity(x_t, t, y)
            tangents = torch.stack([noise - x, v_fake])
            out, dout = discriminator_jvp(self.discriminator, x_t, t, y, tangents)
            losses = discriminator_loss(out, dout[0], dout[1], self.cp_scale)
            scores = {"d_real": dout[0].mean(), "d_fake": dout[1].mean(), "d_out": out.mean()}
            return {**losses, **{k: v.detach() for k, v in scores.items()}}
        if optimizer != "generator":
            raise ValueError(f"unknown optimizer {optimizer!r}; CAFM has discriminator, generator")
        v_fake = self.generator.velocity(x_t, t, y)
        with _frozen(self.discriminator):
            _, d_fake = discriminator_jvp(self.discriminator, x_t, t, y, v_fake)
        return {**generator_loss(d_fake, v_fake, self.ot_scale), "d_fake": d_fake.detach().mean()}
