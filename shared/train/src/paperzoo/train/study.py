"""Claim studies: arms x seeds through one recipe runner, with the claims decided by code.

A paper's ``tiny`` recipe tests the paper's central claim as a small experiment. The recipe
declares it next to its config, in a torch-free module (this one imports nothing heavy)::

    from paperzoo.train.study import Arm, Claim, Study

    def tiny_study() -> Study:
        return Study(
            arms=(Arm("v1", ("moco.mlp=false", "moco.aug_plus=false")), Arm("v2")),
            seeds=(0, 1, 2),
            claims=(Claim("v2 beats v1", metric="linear_top1", arm="v2", baseline="v1"),),
        )

and its :class:`~paperzoo.core.specs.RecipeSpec` names it (``study="pkg.recipes:tiny_study"``).
The recipe's runner, ``run(cfg, ctx) -> RunResult``, then runs one *cell*: one arm's config
with one seed, written to ``OUT/<arm>/seed<k>/`` (its own ``config.json``, ``metrics.jsonl``,
checkpoints and ``summary.json``). Cells share ``OUT/_shared`` (``ctx.shared_dir``) for data
that they would otherwise each generate again.

:func:`run_study` runs every cell that is not finished, then :func:`collect_study` writes
``OUT/summary.json`` (per-arm means, standard deviations and per-seed values, and each claim's
verdict), prints the table and writes ``OUT/study.png``.

- ``resume=True`` skips finished cells (a cell is finished once its ``summary.json`` exists:
  it is written atomically, last) and resumes a half-finished one from its checkpoints, so a
  study killed at any moment ends with the numbers an uninterrupted one gives.
- ``cell="ARM/SEED"`` runs one cell only and ``collect=True`` only aggregates, so that a
  scheduler (Slurm job arrays through submitit, see ``docs/studies.md``) can run cells in
  parallel.

A config's seed is the field ``Study.seed_key`` (``seed`` by default). The order in which a
cell's config is built: recipe defaults, then the arm's overrides, then the user's
``--set`` overrides (applied to every arm), then the seed.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperzoo.core.io import atomic_path, atomic_write_json

__all__ = [
    "RULES",
    "Arm",
    "Claim",
    "Study",
    "StudyError",
    "cell_config",
    "cell_name",
    "collect_study",
    "format_study",
    "load_study",
    "parse_cell",
    "plot_study",
    "run_cell",
    "run_study",
]

RULES = {
    "better_mean": "the arm's mean over seeds beats the baseline's by more than the margin",
    "better_all_seeds": "the mean beats the baseline's by more than the margin, and so does "
    "every paired seed (by more than 0)",
    "not_better": "the arm's mean does not beat the baseline's by more than the margin",
    "within": "the two means differ by at most the margin, in either direction",
}


class StudyError(ValueError):
    """A study that cannot run or be collected as asked; the message says what to do."""


@dataclass(frozen=True)
class Arm:
    """One arm: a name and the config overrides (``dotted.key=value``, as ``--set``) that make it.

    ``configure``, when given, is called with the config after the overrides and returns the
    arm's config, for a change that overrides cannot express.
    """

    name: str
    overrides: tuple[str, ...] = ()
    description: str = ""
    configure: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith(("_", ".")):
            raise StudyError(
                f"arm name {self.name!r} must be non-empty, without '/', and not start with "
                "'_' or '.' (it names the arm's folder)"
            )
        if isinstance(self.overrides, str):
            raise StudyError(f"arm {self.name!r}: overrides must be a tuple of strings")


@dataclass(frozen=True)
class Claim:
    """A claim the study tests: ``arm`` against ``baseline`` on ``metric``, decided by ``rule``.

    Deltas are ``arm - baseline`` (per paired seed and of the means); with
    ``higher_is_better=False`` a lower value is the better one. See :data:`RULES`.
    """

    statement: str
    metric: str
    arm: str
    baseline: str
    rule: str = "better_all_seeds"
    higher_is_better: bool = True
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise StudyError(
                f"claim {self.statement!r}: unknown rule {self.rule!r}; use one of "
                f"{', '.join(RULES)}"
            )
        if self.margin < 0:
            raise StudyError(f"claim {self.statement!r}: margin must be >= 0")

    def decide(self, values: Mapping[str, Mapping[int, float]]) -> dict[str, Any]:
        """The verdict from ``values[arm][seed]``, over the seeds both arms have."""
        ours, base = values[self.arm], values[self.baseline]
        seeds = sorted(set(ours) & set(base))
        if not seeds:
            raise StudyError(
                f"claim {self.statement!r}: no seed has both {self.arm} and {self.baseline}"
            )
        sign = 1.0 if self.higher_is_better else -1.0
        deltas = {s: ours[s] - base[s] for s in seeds}
        mean = {
            name: statistics.fmean(values[name][s] for s in seeds)
            for name in (self.arm, self.baseline)
        }
        std = {name: _std([values[name][s] for s in seeds]) for name in (self.arm, self.baseline)}
        delta = mean[self.arm] - mean[self.baseline]
        gain = sign * delta
        if self.rule == "better_mean":
            holds = gain > self.margin
        elif self.rule == "better_all_seeds":
            holds = gain > self.margin and all(sign * d > 0 for d in deltas.values())
        elif self.rule == "not_better":
            holds = gain <= self.margin
        else:  # within
            holds = abs(delta) <= self.margin
        return {
            "statement": self.statement,
            "holds": bool(holds),
            "metric": self.metric,
            "arm": self.arm,
            "baseline": self.baseline,
            "rule": self.rule,
            "rule_text": RULES[self.rule],
            "higher_is_better": self.higher_is_better,
            "margin": self.margin,
            "per_seed": {
                str(s): {self.arm: ours[s], self.baseline: base[s], "delta": deltas[s]}
                for s in seeds
            },
            "mean": mean,
            "std": std,
            "delta": delta,
            "seeds_won": sum(sign * d > 0 for d in deltas.values()),
            "num_seeds": len(seeds),
        }


@dataclass(frozen=True)
class Study:
    """Arms x seeds and the claims they test. ``metrics`` are shown besides the claims' own."""

    arms: tuple[Arm, ...]
    claims: tuple[Claim, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2)
    seed_key: str = "seed"
    metrics: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        names = [a.name for a in self.arms]
        if not names:
            raise StudyError("a study needs at least one arm")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise StudyError(f"arm names must be unique; repeated: {', '.join(dupes)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise StudyError(f"seeds must be distinct and non-empty, got {self.seeds!r}")
        for claim in self.claims:
            for name in (claim.arm, claim.baseline):
                if name not in names:
                    raise StudyError(
                        f"claim {claim.statement!r} names arm {name!r}; the arms are "
                        f"{', '.join(names)}"
                    )

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise StudyError(
            f"unknown arm {name!r}; the arms are {', '.join(a.name for a in self.arms)}"
        )

    @property
    def shown_metrics(self) -> tuple[str, ...]:
        out = list(self.metrics)
        out += [c.metric for c in self.claims if c.metric not in out]
        return tuple(out)


# -- building and running cells -------------------------------------------------------------------


def load_study(recipe: Any) -> Study:
    """The :class:`Study` a recipe spec declares (``RecipeSpec.study``)."""
    from paperzoo.core._imports import resolve

    if not getattr(recipe, "study", ""):
        raise StudyError(f"recipe {recipe.name!r} declares no study")
    study = resolve(recipe.study)()
    if not isinstance(study, Study):
        raise StudyError(
            f"recipe {recipe.name!r}: {recipe.study!r} returned {type(study).__name__}, not a Study"
        )
    return study


def cell_name(arm: str, seed: int) -> str:
    return f"{arm}/seed{seed}"


def parse_cell(text: str, study: Study) -> tuple[str, int]:
    """``"ARM/SEED"`` (or ``"ARM/seedSEED"``) -> (arm, seed), checked against the study."""
    arm, sep, seed_text = text.partition("/")
    seed_text = seed_text.removeprefix("seed")
    if not sep or not seed_text.lstrip("-").isdigit():
        raise StudyError(
            f"--cell takes ARM/SEED (for example {study.arms[0].name}/0), got {text!r}"
        )
    study.arm(arm)
    return arm, int(seed_text)


def cell_config(recipe: Any, study: Study, arm: Arm, seed: int, overrides: Sequence[str]) -> Any:
    """The config of one cell: defaults, the arm's overrides, the user's, then the seed."""
    from paperzoo.core.run import build_config

    cfg = build_config(recipe, [*arm.overrides, *overrides, f"{study.seed_key}={seed}"])
    if arm.configure is not None:
        cfg = arm.configure(cfg)
    return cfg


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _check_same_config(cell_dir: Path, cfg: Any, name: str) -> None:
    from paperzoo.core.config import to_dict

    stored = _read_json(cell_dir / "config.json")
    if stored is None:
        return
    if stored.get("config") != _jsonable(to_dict(cfg)):
        raise StudyError(
            f"cell {name} in {cell_dir} was run with a different config than this study now "
            "builds (another --set, or a changed recipe); rerun it without --resume, or pass "
            "the same overrides as before"
        )


def _is_main() -> bool:
    return int(os.environ.get("RANK", 0)) == 0


def _barrier() -> None:
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        from paperzoo.train import distributed as dist_utils

        dist_utils.barrier()


def run_cell(
    recipe: Any,
    study: Study,
    arm: Arm,
    seed: int,
    *,
    out_dir: Path,
    overrides: Sequence[str] = (),
    resume: bool = False,
    progress: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Run one cell into ``out_dir/<arm>/seed<seed>``; returns (its summary, whether it ran).

    With ``resume``, a finished cell (its ``summary.json`` exists) is not run again and a
    half-finished one continues from its checkpoints. Without it, the cell's folder is cleared
    and the cell runs from the start.
    """
    from paperzoo.core.run import run_recipe

    name = cell_name(arm.name, seed)
    cfg = cell_config(recipe, study, arm, seed, overrides)
    cell_dir = out_dir / arm.name / f"seed{seed}"
    if resume:
        _check_same_config(cell_dir, cfg, name)
        done = _read_json(cell_dir / "summary.json")
        if done is not None:
            return done, False
    elif _is_main() and cell_dir.exists():
        shutil.rmtree(cell_dir)
    _barrier()
    summary = run_recipe(
        recipe,
        out_dir=cell_dir,
        overrides=[*arm.overrides, *overrides, f"{study.seed_key}={seed}"],
        resume=resume,
        stream=io.StringIO(),  # the study prints one table at the end, not one per cell
        config=cfg,
        shared_dir=out_dir / "_shared",
        progress=progress,
    )
    return summary, True


class _Progress:
    """One line over all cells: cell i of N, the last cell's result, elapsed time and ETA."""

    def __init__(self, total: int, stream: Any) -> None:
        self.total, self.stream = total, stream
        self.start = time.perf_counter()
        self.ran_seconds: list[float] = []
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def show(self, index: int, name: str, note: str, remaining: int) -> None:
        if not _is_main():
            return
        elapsed = time.perf_counter() - self.start
        eta = statistics.fmean(self.ran_seconds) * remaining if self.ran_seconds else math.nan
        eta_text = "?" if math.isnan(eta) else _duration(eta)
        line = (
            f"[study] cell {index}/{self.total} {name}: {note} | elapsed {_duration(elapsed)}, "
            f"eta {eta_text}"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            if index == self.total and remaining == 0:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _short_metrics(metrics: Mapping[str, float], keys: Sequence[str]) -> str:
    shown = [f"{k} {metrics[k]:.4g}" for k in keys if k in metrics]
    return ", ".join(shown) or "done"


def run_study(
    recipe: Any,
    *,
    out_dir: str | os.PathLike[str],
    overrides: Sequence[str] = (),
    seeds: Sequence[int] | None = None,
    resume: bool = False,
    cell: str | None = None,
    collect: bool = False,
    stream: Any = None,
) -> dict[str, Any]:
    """Run ``recipe``'s study into ``out_dir`` and return its summary (see the module docstring).

    ``cell="ARM/SEED"`` runs that cell only and returns the cell's summary; ``collect=True``
    runs nothing and aggregates the finished cells (an error names any that are missing).
    """
    stream = stream or sys.stdout
    study = load_study(recipe)
    if seeds:
        study = dataclasses.replace(study, seeds=tuple(int(s) for s in seeds))
    out = Path(out_dir)
    if cell is not None and collect:
        raise StudyError("--cell runs one cell and --collect aggregates; pass one of them")
    # Every cell's config is built first, so a bad override fails before any work starts.
    for arm in study.arms:
        for seed in study.seeds:
            cell_config(recipe, study, arm, seed, overrides)
    if _is_main():
        out.mkdir(parents=True, exist_ok=True)
    if cell is not None:
        arm_name, seed = parse_cell(cell, study)
        summary, ran = run_cell(
            recipe, study, study.arm(arm_name), seed,
            out_dir=out, overrides=overrides, resume=resume, progress=True,
        )  # fmt: skip
        if _is_main():
            state = "ran" if ran else "already finished"
            print(
                f"cell {cell_name(arm_name, seed)} {state}: "
                f"{_short_metrics(summary['metrics'], study.shown_metrics)} "
                f"({out / arm_name / f'seed{seed}'})",
                file=stream,
            )
        return summary
    if not collect:
        cells = [(arm, seed) for seed in study.seeds for arm in study.arms]
        bar = _Progress(len(cells), sys.stderr)
        for i, (arm, seed) in enumerate(cells, start=1):
            name = cell_name(arm.name, seed)
            bar.show(i, name, "running", len(cells) - i + 1)
            start = time.perf_counter()
            summary, ran = run_cell(
                recipe, study, arm, seed, out_dir=out, overrides=overrides, resume=resume
            )
            if ran:
                bar.ran_seconds.append(time.perf_counter() - start)
            note = _short_metrics(summary["metrics"], study.shown_metrics)
            bar.show(i, name, note if ran else f"finished before ({note})", len(cells) - i)
    if not _is_main():
        return {}
    return collect_study(recipe, study, out, overrides=overrides, stream=stream)


# -- aggregating -----------------------------------------------------------------------------------


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def collect_study(
    recipe: Any,
    study: Study,
    out_dir: str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    stream: Any = None,
) -> dict[str, Any]:
    """Aggregate the finished cells under ``out_dir``: ``summary.json``, the table, the PNG."""
    stream = stream or sys.stdout
    out = Path(out_dir)
    cells: dict[str, dict[str, Any]] = {}
    missing = []
    for arm in study.arms:
        for seed in study.seeds:
            summary = _read_json(out / arm.name / f"seed{seed}" / "summary.json")
            if summary is None:
                missing.append(cell_name(arm.name, seed))
            else:
                cells[cell_name(arm.name, seed)] = summary
    if missing:
        shown = ", ".join(missing[:6]) + (
            f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        )
        first = missing[0].replace("/seed", "/")
        raise StudyError(
            f"{len(missing)} of {len(study.arms) * len(study.seeds)} cells are not finished in "
            f"{out}: {shown}; run them first (e.g. `paperzoo reproduce {recipe.paper} --out {out} "
            f"--cell {first} --resume`), then collect again"
        )
    # values[metric][arm][seed]
    values: dict[str, dict[str, dict[int, float]]] = {}
    for arm in study.arms:
        for seed in study.seeds:
            for key, value in cells[cell_name(arm.name, seed)]["metrics"].items():
                values.setdefault(key, {}).setdefault(arm.name, {})[seed] = float(value)
    arms: dict[str, Any] = {}
    for arm in study.arms:
        metrics = {}
        for key, per_arm in values.items():
            per_seed = per_arm.get(arm.name, {})
            if len(per_seed) != len(study.seeds):
                continue  # a metric only some cells report (e.g. a baseline-only one)
            points = [per_seed[s] for s in study.seeds]
            metrics[key] = {
                "per_seed": {str(s): per_seed[s] for s in study.seeds},
                "mean": statistics.fmean(points),
                "std": _std(points),
            }
        arms[arm.name] = {
            "overrides": list(arm.overrides),
            "description": arm.description,
            "metrics": metrics,
        }
    claims = []
    for claim in study.claims:
        per_arm = values.get(claim.metric, {})
        for name in (claim.arm, claim.baseline):
            if len(per_arm.get(name, {})) != len(study.seeds):
                raise StudyError(
                    f"claim {claim.statement!r}: arm {name!r} does not report metric "
                    f"{claim.metric!r} in every cell; its runner returns "
                    f"{sorted(cells[cell_name(name, study.seeds[0])]['metrics'])}"
                )
        claims.append(claim.decide(per_arm))
    summary = {
        "paper": recipe.paper,
        "recipe": recipe.variant,
        "recipe_name": recipe.name,
        "description": study.description,
        "seeds": list(study.seeds),
        "seed_key": study.seed_key,
        "overrides": list(overrides),
        "shown_metrics": list(study.shown_metrics),
        "arms": arms,
        "claims": claims,
        "reference": dict(recipe.reference),
        "cells": {
            name: {
                "wall_seconds": c.get("wall_seconds"),
                "steps": c.get("steps"),
                "world_size": c.get("world_size"),
            }
            for name, c in cells.items()
        },
        "cells_wall_seconds": round(
            sum(float(c.get("wall_seconds") or 0) for c in cells.values()), 3
        ),
    }
    atomic_write_json(out / "summary.json", summary)
    png = plot_study(summary, out / "study.png")
    print(format_study(summary), file=stream)
    print(f"wrote {out / 'summary.json'} and {png}", file=stream)
    return summary


def format_study(summary: Mapping[str, Any]) -> str:
    """The arms' table (mean ± std and every seed, one block per metric) and the verdicts."""
    seeds = [str(s) for s in summary["seeds"]]
    lines = [
        f"{summary['paper']} {summary['recipe']}: {len(summary['arms'])} arms x {len(seeds)} seeds"
    ]
    for metric in summary["shown_metrics"]:
        rows = [("arm", "mean ± std", *(f"seed {s}" for s in seeds))]
        for name, arm in summary["arms"].items():
            m = arm["metrics"].get(metric)
            if m is None:
                rows.append((name, "-", *("-" for _ in seeds)))
                continue
            rows.append(
                (
                    name,
                    f"{m['mean']:.4g} ± {m['std']:.2g}",
                    *(f"{m['per_seed'][s]:.4g}" for s in seeds),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines += ["", metric]
        for i, row in enumerate(rows):
            cells = [
                c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))
            ]
            lines.append("  ".join(cells))
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
    if summary["claims"]:
        lines.append("")
    for claim in summary["claims"]:
        verdict = "HOLDS" if claim["holds"] else "DOES NOT HOLD"
        per_seed = " ".join(f"{v['delta']:+.3g}" for v in claim["per_seed"].values())
        lines.append(
            f"{verdict}: {claim['statement']} [{claim['metric']}, {claim['rule']}"
            + (f", margin {claim['margin']:g}" if claim["margin"] else "")
            + f"]: {claim['arm']} - {claim['baseline']} = {claim['delta']:+.4g} "
            f"(per seed {per_seed}; won {claim['seeds_won']}/{claim['num_seeds']})"
        )
    return "\n".join(lines)


def plot_study(summary: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """A PNG with, per shown metric, every seed's point per arm and the arms' means ± std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = (
        list(summary["shown_metrics"])
        or sorted({k for arm in summary["arms"].values() for k in arm["metrics"]})[:4]
    )
    arms = list(summary["arms"])
    seeds = [str(s) for s in summary["seeds"]]
    fig, axes = plt.subplots(
        1,
        max(1, len(metrics)),
        figsize=(1.2 + 1.3 * len(arms) * max(1, len(metrics)), 3.6),
        squeeze=False,
    )
    markers = "osD^vP*X"
    for ax, metric in zip(axes[0], metrics):
        for x, name in enumerate(arms):
            m = summary["arms"][name]["metrics"].get(metric)
            if m is None:
                continue
            for j, s in enumerate(seeds):
                offset = (j - (len(seeds) - 1) / 2) * 0.08
                ax.plot(x + offset, m["per_seed"][s], markers[j % len(markers)], color=f"C{j}",
                        alpha=0.8, label=f"seed {s}" if x == 0 else None)  # fmt: skip
            ax.errorbar(x, m["mean"], yerr=m["std"], fmt="_", color="black", markersize=22,
                        capsize=4, label="mean ± std" if x == 0 else None)  # fmt: skip
        ax.set_xticks(range(len(arms)), arms, rotation=20, ha="right")
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    verdicts = "; ".join(
        f"{c['arm']} vs {c['baseline']}: {'holds' if c['holds'] else 'does not hold'}"
        for c in summary["claims"]
    )
    fig.suptitle(f"{summary['paper']} {summary['recipe']}" + (f": {verdicts}" if verdicts else ""),
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
