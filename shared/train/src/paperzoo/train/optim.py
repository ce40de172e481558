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
- Layer-wise lr decay (BEiT, arXiv:2106.08254; MAE fine-tuning, facebookresearch/mae
  ``util/lr_decay.py``): :func:`layer_decay_param_groups` gives each parameter group an
  ``lr_scale`` of ``layer_decay ** (num_layers + 1 - layer_id)``, which ``build_optimizer``
  applies to the recipe's lr.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from paperzoo.core.config import OptimConfig

__all__ = [
    "LARS",
    "build_optimizer",
    "build_scheduler",
    "layer_decay_param_groups",
    "lr_factor",
    "scaled_lr",
    "vit_layer_id",
]


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


def _param_groups(
    model: nn.Module,
    cfg: OptimConfig,
    lr: float,
    given: Iterable[dict[str, Any]] | None = None,
    source: str = "param_groups()",
) -> list[dict[str, Any]]:
    custom = getattr(model, "param_groups", None)
    explicit = given is not None
    if given is None and callable(custom):
        given = custom()
    if given is not None:
        raw = [dict(g) for g in given]
        for g in raw:
            if "params" not in g:
                raise ValueError(
                    f"{type(model).__name__}.{source} must return dicts with a 'params' key"
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
        what = f" in {source}" if explicit else ""
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters{what} (all have "
            "requires_grad=False)"
        )
    return groups


def build_optimizer(
    model: nn.Module,
    cfg: OptimConfig,
    *,
    lr: float,
    param_groups: Iterable[dict[str, Any]] | None = None,
    source: str = "param_groups()",
) -> torch.optim.Optimizer:
    """The optimizer ``cfg.name`` over ``model``'s trainable parameters with peak lr ``lr``.

    Uses ``param_groups`` when given (one entry of a method's ``optimizer_param_groups()``;
    ``source`` names it in errors), else ``model.param_groups()`` when the method defines it
    (dicts with ``params`` and optional ``lr``, ``lr_scale``, ``weight_decay``), else one group
    of every trainable parameter.
    """
    groups = _param_groups(model, cfg, lr, param_groups, source)
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


# -- layer-wise learning-rate decay -----------------------------------------------------------

# Parameters of the stem: the patch embedding, position embeddings and class/register tokens.
_STEM_PREFIXES = ("patch_embed", "pos_embed", "cls_token", "dist_token", "reg_token")


def vit_layer_id(name: str, num_layers: int) -> int:
    """The layer of parameter ``name`` in a ViT-style model (MAE ``get_layer_id_for_vit``).

    The stem (``patch_embed.*``, ``pos_embed*``, ``cls_token``, ...) is layer 0, ``blocks.i.*``
    is layer ``i + 1``, and everything else (final norm, head) is layer ``num_layers + 1``.
    """
    if name.startswith(_STEM_PREFIXES):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_layers + 1


def layer_decay_param_groups(
    model: nn.Module,
    *,
    weight_decay: float,
    layer_decay: float,
    num_layers: int | None = None,
    layer_id: Callable[[str], int] | None = None,
    no_weight_decay: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Optimizer groups with layer-wise lr decay, for ``model.param_groups()`` of a method.

    Each trainable parameter gets ``lr_scale = layer_decay ** (num_layers + 1 - layer)``, so
    the head (layer ``num_layers + 1``) trains at the recipe's lr and the stem (layer 0) at
    ``layer_decay ** (num_layers + 1)`` of it. ``layer_id(name) -> int`` gives the layer of a
    parameter name; by default :func:`vit_layer_id` with ``num_layers`` (default
    ``len(model.blocks)``). Parameters with ``ndim <= 1`` (biases, norm weights) and those
    named in ``no_weight_decay`` (default ``model.no_weight_decay()`` when the model has it,
    as timm models do) get no weight decay. Groups are keyed by (layer, decay) in parameter
    order; each dict has ``params``, ``weight_decay`` and ``lr_scale``.
    """
    if num_layers is None:
        blocks = getattr(model, "blocks", None)
        if blocks is None:
            raise ValueError(
                f"{type(model).__name__} has no .blocks: pass num_layers= (and layer_id= if its "
                "parameter names do not follow the ViT layout)"
            )
        num_layers = len(blocks)
    if layer_id is None:
        depth = num_layers

        def layer_id(name: str) -> int:
            return vit_layer_id(name, depth)

    if no_weight_decay is None:
        fn = getattr(model, "no_weight_decay", None)
        no_weight_decay = fn() if callable(fn) else ()
    skip = set(no_weight_decay)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        layer = layer_id(name)
        if not 0 <= layer <= num_layers + 1:
            raise ValueError(f"layer_id({name!r}) = {layer}, outside 0..{num_layers + 1}")
        decay = p.ndim > 1 and name not in skip
        key = (layer, decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "weight_decay": weight_decay if decay else 0.0,
                "lr_scale": layer_decay ** (num_layers + 1 - layer),
            }
        groups[key]["params"].append(p)
    return list(groups.values())
