"""Flow matching shared by Adversarial Flow Models and Continuous Adversarial Flow Models.

Convention (advflow's, arXiv 2511.22475, and diffusers' FlowMatch schedulers): t = 1 is noise,
t = 0 is data,

    x_t = (1 - t) * x + t * noise,   v = dx_t/dt = noise - x,

and sampling integrates dx/dt = v from t = 1 to t = 0 (advflow: ``t = linspace(1, 0, steps+1)``).

SiT (Ma et al., arXiv 2401.08740, github.com/willisma/SiT) runs the other way: its linear path
puts noise at 0 and data at 1 (``transport/transport.py``: ``Transport.sample`` draws
``x0 = randn_like(x1)`` for the data ``x1``; ``training_losses`` regresses ``ut`` of
``path_sampler.plan(t, x0, x1)``, the ``ICPlan`` with ``alpha_t = t, sigma_t = 1 - t``, so
``x_t = t x1 + (1 - t) x0``, ``ut = x1 - x0``) and feeds t in [0, 1] to the t_embedder
unscaled. cafm's ``models/cafm/sit/generator.py`` converts exactly so: ``-SiT(x, 1 - t, y)``.
:class:`SiTVelocity` does the same for our :class:`~paperzoo.gen.dit.DiT`.

The Euler / Heun integrators are written out rather than taken from diffusers'
``FlowMatchEulerDiscreteScheduler`` / ``FlowMatchHeunDiscreteScheduler``: those feed the model
``sigma * num_train_timesteps`` with a fixed shift, and the Heun one spaces its grid from 1 to
``1 / num_train_timesteps`` then takes a last Euler step to 0, where SiT's fixed-step ODE
(torchdiffeq ``odeint(method="heun2")`` on ``linspace(t0, t1, num_steps)``,
``transport/integrators.py``) and advflow use the plain grid with a second-order step on every
interval.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FlowMatching",
    "SiTVelocity",
    "cfg_velocity",
    "interpolate",
    "sample_ode",
    "velocity_target",
]

VelocityFn = Callable[[Tensor, Tensor], Tensor]


def _per_sample(t: Tensor, like: Tensor) -> Tensor:
    """(B,) or scalar t -> shape (B, 1, ..., 1) to broadcast against ``like``."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t
    return t.view(-1, *([1] * (like.ndim - 1)))


def interpolate(x: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """x_t = (1 - t) x + t noise; ``t`` (B,) or scalar in [0, 1], 1 = noise."""
    t = _per_sample(t, x)
    return (1 - t) * x + t * noise


def velocity_target(x: Tensor, noise: Tensor) -> Tensor:
    """v = d x_t / dt = noise - x."""
    return noise - x


def sample_ode(
    velocity_fn: VelocityFn,
    noise: Tensor,
    steps: int | None = None,
    *,
    method: str = "euler",
    t_grid: Sequence[float] | Tensor | None = None,
) -> Tensor:
    """Integrate dx/dt = velocity_fn(x, t) from the first to the last time of ``t_grid``
    (default ``linspace(1, 0, steps + 1)``: noise to data) and return x at the end.

    ``velocity_fn(x, t)``: x (B, ...), t (B,) -> (B, ...). ``method``: ``"euler"`` (one
    evaluation per interval) or ``"heun"`` (Heun's predictor-corrector on every interval,
    the last one included, as torchdiffeq's ``heun2`` in SiT's ODE sampler; 2 evaluations per
    interval). Gradients flow unless the caller disables them.
    """
    if method not in ("euler", "heun"):
        raise ValueError(f"unknown method {method!r}; use 'euler' or 'heun'")
    if t_grid is None:
        if steps is None or steps < 1:
            raise ValueError(f"give steps >= 1 or a t_grid, got steps={steps}")
        grid = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    else:
        grid = torch.as_tensor(t_grid, dtype=torch.float64)
        if grid.ndim != 1 or len(grid) < 2:
            raise ValueError("t_grid must be a 1-D sequence of at least 2 times")
    x = noise
    batch = noise.shape[0]

    def at(t: Tensor) -> Tensor:
        return torch.full((batch,), float(t), dtype=noise.dtype, device=noise.device)

    for t_cur, t_next in itertools.pairwise(grid):
        dt = float(t_next - t_cur)
        v = velocity_fn(x, at(t_cur))
        if method == "euler":
            x = x + dt * v
        else:
            v_next = velocity_fn(x + dt * v, at(t_next))
            x = x + 0.5 * dt * (v + v_next)
    return x


def cfg_velocity(
    model: Callable[[Tensor, Tensor, Tensor], Tensor], y: Tensor, scale: float, null_class: int
) -> VelocityFn:
    """velocity_fn(x, t) of ``model(x, t, y)`` under classifier-free guidance:
    v_uncond + scale * (v_cond - v_uncond), with the null class as the unconditional label
    (one doubled batch). ``scale == 1`` is the plain conditional velocity (one pass)."""
    if scale == 1:
        return lambda x, t: model(x, t, y)
    null = torch.full_like(y, null_class)
    labels = torch.cat([y, null])

    def velocity_fn(x: Tensor, t: Tensor) -> Tensor:
        cond, uncond = model(torch.cat([x, x]), torch.cat([t, t]), labels).chunk(2)
        return uncond + scale * (cond - uncond)

    return velocity_fn


class SiTVelocity(nn.Module):
    """A SiT-trained :class:`~paperzoo.gen.dit.DiT` as a velocity in our convention:
    ``v(x_t, t, y) = -u_SiT(x_t, 1 - t, y)[:, :in_channels]`` (SiT's forward drops the
    learn_sigma half the same way). t in [0, 1], 1 = noise."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: Tensor, t: Tensor, y: Tensor) -> Tensor:
        out = self.model(x_t, 1 - torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device), y)
        return -out[:, : self.model.in_channels]


def _xy(batch: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        raise TypeError("FlowMatching batches are (x, y): latents (B, C, H, W), labels (B,)")
    return batch[0], batch[1]


class FlowMatching(nn.Module):
    """The flow-matching objective on a class-conditional DiT(-like) velocity model.

    ``model(x_t, t * time_scale, y)`` predicts v = noise - x on its first ``in_channels``
    output channels (a learn_sigma model's other half is not trained, as in SiT); label
    dropout is the model's own (DiT's y_embedder in training mode). ``time_scale``: 1000 for
    DiT-style time embedding (advflow feeds t * 1000), 1 to feed t in [0, 1] as SiT does (but
    in our direction: a real SiT checkpoint needs :class:`SiTVelocity`).

    ``time_sampling``: ``"uniform"`` t ~ U(0, 1), or ``"logit_normal"``
    t = sigmoid(N(mean, std)) in our convention (JiT's P_mean = -0.8 with data at t = 1 is
    mean = +0.8 here, since 1 - sigmoid(z) = sigmoid(-z)).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        time_scale: float = 1000.0,
        time_sampling: str = "uniform",
        logit_normal_mean: float = 0.0,
        logit_normal_std: float = 1.0,
    ) -> None:
        super().__init__()
        if time_sampling not in ("uniform", "logit_normal"):
            raise ValueError(
                f"unknown time_sampling {time_sampling!r}; 'uniform' or 'logit_normal'"
            )
        self.model = model
        self.time_scale = time_scale
        self.time_sampling = time_sampling
        self.logit_normal_mean = logit_normal_mean
        self.logit_normal_std = logit_normal_std

    def sample_t(self, batch: int, device: torch.device) -> Tensor:
        """(batch,) times in [0, 1]."""
        if self.time_sampling == "uniform":
            return torch.rand(batch, device=device)
        z = torch.randn(batch, device=device) * self.logit_normal_std + self.logit_normal_mean
        return torch.sigmoid(z)

    def velocity(self, x_t: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """(B, C, H, W), (B,) in [0, 1], (B,) -> predicted v (B, C, H, W)."""
        out = self.model(x_t, t * self.time_scale, y)
        return out[:, : self.model.in_channels]

    def forward(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Latents x (B, C, H, W), labels y (B,) -> {"loss": mean (v_pred - (noise - x))^2}."""
        noise = torch.randn_like(x)
        t = self.sample_t(x.shape[0], x.device)
        v = self.velocity(interpolate(x, noise, t), t, y)
        return {"loss": F.mse_loss(v.float(), velocity_target(x, noise).float())}

    def training_step(self, batch: Any, step: int) -> dict[str, Tensor]:
        return self(*_xy(batch))

    def trainable_module(self) -> nn.Module:
        return self.model

    @torch.no_grad()
    def sample(
        self,
        y: Tensor,
        *,
        steps: int = 50,
        method: str = "euler",
        cfg_scale: float = 1.0,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Class labels y (B,) -> samples (B, C, H, W) from t = 1 to 0 (model in eval mode
        meanwhile, so no label dropout; ``cfg_scale`` != 1 needs the null-class row)."""
        model = self.model
        if noise is None:
            size = model.grid_size * model.patch_size
            shape = (y.shape[0], model.in_channels, size, size)
            noise = torch.randn(shape, generator=generator, device=y.device)
        was_training = model.training
        model.eval()
        try:
            velocity_fn = cfg_velocity(self.velocity, y, cfg_scale, model.num_classes)
            return sample_ode(velocity_fn, noise, steps, method=method)
        finally:
            model.train(was_training)
