"""The runner of the asymsiam recipes: paperzoo-mocov2's runner with the asymsiam hooks.

:func:`paperzoo.mocov2.reproduce.pretrain_and_evaluate` builds the data, trains with the
Trainer (one process or DDP under torchrun, exact resume) and evaluates (the tiny probes, or
the paper's linear classification through the Trainer: here SimSiam's LARS protocol). This
module gives it the asymsiam views (:func:`paperzoo.asymsiam.data.asym_views`), the method
(:class:`paperzoo.asymsiam.method.AsymSiamMethod`, AsymBN through ``sync_key_head``) and, when
``asym.measure_variance`` is on, the intra-image variance of the source and target encodings
on the scored split's images (metrics ``source_variance``, ``target_variance``,
``variance_ratio``).
"""

from __future__ import annotations

from typing import Any

from paperzoo.asymsiam.data import asym_views
from paperzoo.asymsiam.method import AsymSiamMethod, intra_image_variance
from paperzoo.asymsiam.recipes import AsymSiamRecipeConfig
from paperzoo.core.run import RunContext, RunResult
from paperzoo.mocov2.reproduce import pretrain_and_evaluate

__all__ = ["run"]


def _method(model: Any, cfg: AsymSiamRecipeConfig) -> AsymSiamMethod:
    return AsymSiamMethod(
        model, shuffle_bn=cfg.moco.shuffle_bn, bn_splits=cfg.moco.bn_splits,
        sync_key_head=cfg.asym.asym_bn,
    )  # fmt: skip


def _variance(method: Any, data: Any, cfg: AsymSiamRecipeConfig, trainer: Any) -> dict[str, float]:
    return intra_image_variance(
        method, data.heldout_views, batch_size=trainer.batch_size, draws=cfg.asym.variance_draws,
        max_images=cfg.asym.variance_images, device=trainer.device,
    )  # fmt: skip


def run(cfg: AsymSiamRecipeConfig, ctx: RunContext) -> RunResult:
    """Pre-train with the designs ``cfg.asym`` switches on, then evaluate."""
    return pretrain_and_evaluate(
        cfg, ctx, views=asym_views, make_method=_method,
        measure=_variance if cfg.asym.measure_variance else None,
    )  # fmt: skip
