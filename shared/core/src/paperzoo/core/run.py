"""Running a recipe: the contract between ``paperzoo reproduce`` and a paper's runner.

A recipe's runner is ``run(config, ctx: RunContext) -> RunResult``. The runner trains and
evaluates, writing ``metrics.jsonl``, ``model.safetensors`` and ``checkpoints/`` under
``ctx.out_dir`` (``paperzoo.train.Trainer`` does this). This module then writes
``summary.json`` and the comparison table on rank 0.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paperzoo.core._imports import resolve
from paperzoo.core.config import apply_overrides, to_dict
from paperzoo.core.io import atomic_write_json
from paperzoo.core.specs import RecipeSpec

__all__ = ["RunContext", "RunResult", "format_comparison", "run_recipe"]


@dataclass(frozen=True)
class RunContext:
    """What a runner needs to know about the run it is part of."""

    out_dir: Path
    recipe: RecipeSpec
    resume: bool = False
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    # A study's cells share this folder for what they would otherwise each make again
    # (generated data sets); None for a plain run.
    shared_dir: Path | None = None
    # False inside a study, which shows one progress line over all its cells instead.
    progress: bool = True

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    @classmethod
    def from_env(
        cls, out_dir: Path, recipe: RecipeSpec, resume: bool = False, **fields: Any
    ) -> RunContext:
        """Read rank and world size as torchrun sets them (1 process when unset)."""
        return cls(
            out_dir=Path(out_dir),
            recipe=recipe,
            resume=resume,
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
            **fields,
        )


@dataclass
class RunResult:
    """What a runner returns: final metrics (floats) and the number of optimizer steps."""

    metrics: dict[str, float]
    steps: int
    extra: dict[str, Any] = field(default_factory=dict)


def build_config(recipe: RecipeSpec, overrides: Sequence[str] = ()) -> Any:
    """The recipe's default config with ``dotted.key=value`` overrides applied."""
    cfg = resolve(recipe.config)()
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(
            f"recipe {recipe.name!r}: config {recipe.config!r} did not return a dataclass"
        )
    return apply_overrides(cfg, overrides)


def run_recipe(
    recipe: RecipeSpec,
    *,
    out_dir: str | os.PathLike[str],
    overrides: Sequence[str] = (),
    resume: bool = False,
    stream: Any = None,
    config: Any = None,
    **context: Any,
) -> dict[str, Any]:
    """Run ``recipe`` in this process (one rank of a torchrun job, or alone).

    ``config`` is the built config when the caller made it (a study's cell); otherwise the
    recipe's default with ``overrides``. ``context`` sets further :class:`RunContext` fields.
    Returns the summary dict, which rank 0 also writes to ``OUT/summary.json``.
    """
    stream = stream or sys.stdout
    # Bad overrides fail before any work starts.
    cfg = build_config(recipe, overrides) if config is None else config
    ctx = RunContext.from_env(Path(out_dir), recipe, resume=resume, **context)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    if ctx.is_main:
        atomic_write_json(
            ctx.out_dir / "config.json",
            {"recipe": recipe.name, "overrides": list(overrides), "config": to_dict(cfg)},
        )
    runner = resolve(recipe.runner)
    start = time.perf_counter()
    result = runner(cfg, ctx)
    wall = time.perf_counter() - start
    if not isinstance(result, RunResult):
        raise TypeError(
            f"runner {recipe.runner!r} returned {type(result).__name__}, expected RunResult"
        )
    summary = {
        "paper": recipe.paper,
        "recipe": recipe.variant,
        "recipe_name": recipe.name,
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "reference": dict(recipe.reference),
        "world_size": ctx.world_size,
        "steps": int(result.steps),
        "wall_seconds": round(wall, 3),
        **({"extra": result.extra} if result.extra else {}),
    }
    if ctx.is_main:
        atomic_write_json(ctx.out_dir / "summary.json", summary)
        print(format_comparison(summary["metrics"], summary["reference"]), file=stream)
        print(f"wrote {ctx.out_dir / 'summary.json'} ({wall:.1f} s)", file=stream)
    return summary


def format_comparison(metrics: Mapping[str, float], reference: Mapping[str, float]) -> str:
    """A plain-text table of measured metrics next to the recipe's reference values."""
    keys = list(metrics) + [k for k in reference if k not in metrics]
    rows = [("metric", "ours", "reference", "delta")]
    for key in keys:
        ours = metrics.get(key)
        ref = reference.get(key)
        delta = ours - ref if ours is not None and ref is not None else None
        rows.append((key, _fmt(ours), _fmt(ref), _fmt(delta, signed=True)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(
                c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))
            )
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"
