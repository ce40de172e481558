"""A pure-Python recipe used to test the reproduce plumbing without torch: gradient descent
on a least-squares line fit. Real arithmetic, so its metrics depend on the overrides."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from paperzoo.core import RunContext, RunResult, TrainerConfig


@dataclass
class LineFitConfig:
    seed: int = 0
    lr: float = 0.1
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(max_steps=50, checkpoint_every=25)
    )


def run(cfg: LineFitConfig, ctx: RunContext) -> RunResult:
    rng = random.Random(cfg.seed)
    xs = [rng.uniform(-1, 1) for _ in range(64)]
    ys = [3.0 * x - 0.5 + rng.gauss(0, 0.01) for x in xs]
    w = b = 0.0
    with open(ctx.out_dir / "metrics.jsonl", "w") as log:
        for step in range(1, cfg.trainer.max_steps + 1):
            gw = sum(2 * (w * x + b - y) * x for x, y in zip(xs, ys)) / len(xs)
            gb = sum(2 * (w * x + b - y) for x, y in zip(xs, ys)) / len(xs)
            w, b = w - cfg.lr * gw, b - cfg.lr * gb
            mse = sum((w * x + b - y) ** 2 for x, y in zip(xs, ys)) / len(xs)
            log.write(json.dumps({"step": step, "loss": mse}) + "\n")
    return RunResult(metrics={"slope": w, "mse": mse}, steps=cfg.trainer.max_steps)
