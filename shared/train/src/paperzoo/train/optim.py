"""Optimizers and learning-rate schedules from an :class:`~paperzoo.core.config.OptimConfig`.

- SGD (momentum, optional Nesterov) and AdamW are torch's.
- LARS (You, Gitman, Ginsburg, "Large Batch Training of Convolutional Networks",
  arXiv:1708.03888) follows MoCo v3's ``moco/optimizer.py`` (github.com/facebookresearch/moco-v3)
  and SimSiam's linear-eval use of it: weight decay is added to the gradient, the update is
  scaled by the trust ratio ``eta * |w| / |g + wd * w|``, then heavy-ball momentum. Biases and
  norm weights (ndim <= 1) go in a group with no weight decay and no trust-ratio adaptation.
  Written here (a few lines) rather than pulled from timm so the trainer does not depend on
  timm, and so the exclusion is an explicit per-group flag (``lars_exclude``).
- Schedules are per optimizer step: linear warmup from ``lr/warmup`` to ``lr``, then cosine to
  ``min_lr``, step decay by ``gamma`` at fractions of the run, or constant.
- Linear scaling: the peak lr is ``cfg.lr * global_batch / cfg.base_batch`` when ``base_batch > 0``
  (Goyal et al., arXiv:1706.02677).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from paperzoo.core.config import OptimConfig

__all__ = ["LARS", "build_optimizer", "build_scheduler", "lr_factor", "scaled_lr"]


class LARS(torch.optim.Optimizer):
    """LARS with momentum; groups flagged ``lars_exclude=True`` skip the trust ratio.

    Per parameter ``w`` with gradient ``g`` in a group with ``lr``, ``weight_decay`` (wd),
    ``momentum`` (m) and ``trust_coefficient`` (eta)::

        d = g + wd * w
        if not lars_exclude and |w| > 0 and |d| > 0:  d = d * eta * |w| / |d|
        mu = m * mu + d;   w = w - lr * mu
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.0,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        trust_coefficient: float = 0.001,
    ) -> None:
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            trust_coefficient=trust_coefficient,
            lars_exclude=False,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad.add(p, alpha=group["weight_decay"])
                if not group["lars_exclude"]:
                    w_norm = torch.linalg.vector_norm(p)
                    d_norm = torch.linalg.vector_norm(d)
                    one = torch.ones_like(w_norm)
                    trust = torch.where(
                        (w_norm > 0) & (d_norm > 0),
                        group["trust_coefficient"] * w_norm / d_norm,
                        one,
                    )
                    d = d.mul(trust)
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                mu = state["mu"]
                mu.mul_(group["momentum"]).add_(d)
                p.add_(mu, alpha=-group["lr"])
        return loss


def scaled_lr(cfg: OptimConfig, global_batch: int) -> float:
    """Peak learning rate after linear scaling (``cfg.lr`` itself when ``base_batch`` is 0)."""
    if cfg.base_batch > 0:
        return cfg.lr * global_batch / cfg.base_batch
    return cfg.lr


def _split_bias_norm(group: dict[str, Any]) -> list[dict[str, Any]]:
    """Split a group into (ndim > 1) and (ndim <= 1: biases, norm weights) without weight decay."""
    params = [p for p in group["params"] if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    out = []
    if decay:
        out.append({**group, "params": decay})
    if no_decay:
        out.append({**group, "params": no_decay, "weight_decay": 0.0, "lars_exclude": True})
    return out


def _param_groups(model: nn.Module, cfg: OptimConfig, lr: float) -> list[dict[str, Any]]:
    custom = getattr(model, "param_groups", None)
    if callable(custom):
        raw = [dict(g) for g in custom()]
        for g in raw:
            if "params" not in g:
                raise ValueError(
                    f"{type(model).__name__}.param_groups() must return dicts with a 'params' key"
                )
            g["params"] = [p for p in g["params"] if p.requires_grad]
    else:
        raw = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    groups: list[dict[str, Any]] = []
    for g in raw:
        # ``lr_scale`` (relative) lets a method give a group a multiple of the recipe's lr.
        scale = g.pop("lr_scale", 1.0)
        g.setdefault("lr", lr * scale)
        g.setdefault("weight_decay", cfg.weight_decay)
        if cfg.name == "lars" or cfg.exclude_bias_norm:
            groups.extend(_split_bias_norm(g))
        elif g["params"]:
            groups.append(g)
    if cfg.name != "lars":
        for g in groups:
            g.pop("lars_exclude", None)
    if not any(g["params"] for g in groups):
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters (all have requires_grad=False)"
        )
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig, *, lr: float) -> torch.optim.Optimizer:
    """The optimizer ``cfg.name`` over ``model``'s trainable parameters with peak lr ``lr``.

    Uses ``model.param_groups()`` when the method defines it (dicts with ``params`` and optional
    ``lr``, ``lr_scale``, ``weight_decay``), else one group of every trainable parameter.
    """
    groups = _param_groups(model, cfg, lr)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov,
        )
    if cfg.name == "adamw":
        return torch.optim.AdamW(
            groups, lr=lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay
        )
    if cfg.name == "lars":
        return LARS(
            groups,
            lr=lr,
            weight_decay=cfg.weight_decay,
            momentum=cfg.momentum,
            trust_coefficient=cfg.trust_coefficient,
        )
    raise ValueError(f"unknown optimizer {cfg.name!r}; use 'sgd', 'adamw' or 'lars'")


def lr_factor(
    step: int, cfg: OptimConfig, max_steps: int, warmup_steps: int, peak_lr: float
) -> float:
    """The multiplier of the peak lr used for optimizer step ``step`` (0-based).

    Warmup: ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps. Then ``cosine``
    decays to ``min_lr / peak_lr`` at ``max_steps``; ``step`` multiplies by ``gamma`` at each
    ``int(m * max_steps)`` milestone; ``constant`` stays at 1.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        passed = sum(step >= int(m * max_steps) for m in cfg.milestones)
        return cfg.gamma**passed
    if cfg.schedule == "cosine":
        floor = cfg.min_lr / peak_lr if peak_lr > 0 else 0.0
        span = max(1, max_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lr schedule {cfg.schedule!r}; use 'cosine', 'step' or 'constant'")


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: OptimConfig,
    *,
    max_steps: int,
    warmup_steps: int,
    peak_lr: float,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-optimizer-step ``LambdaLR``: call ``.step()`` once after every optimizer step."""

    def factor(step: int) -> float:
        return lr_factor(step, cfg, max_steps, warmup_steps, peak_lr)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
