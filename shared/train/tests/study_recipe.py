"""A real recipe for the study tests: the tiny regressor trained by the Trainer, per cell.

Each cell trains ``TinyRegression`` (BN, dropout, augmentation: all that could make a resumed run
drift) on data written once into ``ctx.shared_dir``, then reports its held-out MSE. Arms differ
by ``lr``; ``lr=0`` leaves the model at its initialisation. ``PZ_STEP_SLEEP`` slows each step so
a test can SIGKILL a study part-way through.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tiny_methods import RegressionData, TinyRegression

from paperzoo.core import OptimConfig, RecipeSpec, RunContext, RunResult, TrainerConfig
from paperzoo.train.study import Arm, Claim, Study


@dataclass
class StudyTestConfig:
    seed: int = 0
    lr: float = 0.05
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            max_steps=10,
            checkpoint_every=3,
            keep_checkpoints=2,
            log_every=2,
            progress=False,
            tensorboard=False,
            device="cpu",
            grad_accum_steps=1,
        )
    )


def study() -> Study:
    return Study(
        arms=(
            Arm("untrained", ("lr=0.0",), description="the initialisation"),
            Arm("trained", ()),
        ),
        seeds=(0, 1, 2),
        metrics=("val_mse",),
        claims=(
            Claim(
                "training lowers the held-out error",
                metric="val_mse",
                arm="trained",
                baseline="untrained",
                rule="better_all_seeds",
                higher_is_better=False,
            ),
            Claim(
                "training does not lower the error (false on purpose)",
                metric="val_mse",
                arm="trained",
                baseline="untrained",
                rule="not_better",
                higher_is_better=False,
            ),
        ),
    )


RECIPE = RecipeSpec(
    name="study_test_tiny", config="study_recipe:StudyTestConfig", runner="study_recipe:run",
    paper="studytest", variant="tiny", study="study_recipe:study",
)  # fmt: skip


class _LinearTarget(RegressionData):
    """The same inputs and augmentation with a target a few steps of SGD can learn."""

    def __init__(self, n: int, seed: int, augment: bool = False) -> None:
        super().__init__(n=n, augment=augment, seed=seed)
        self.y = 0.8 * self.x[:, 0] - 0.5 * self.x[:, 1]


class _SlowRegression(TinyRegression):
    def training_step(self, batch, step):
        time.sleep(float(os.environ.get("PZ_STEP_SLEEP", "0")))
        return super().training_step(batch, step)


def _shared_data(ctx: RunContext) -> Path:
    """Written once per study (the tests count the writes through the file's content)."""
    path = Path(ctx.shared_dir or ctx.out_dir) / "data.pt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"seed": 1234}, path)
        with open(path.parent / "writes.log", "a") as f:
            f.write("write\n")
    return path


def run(cfg: StudyTestConfig, ctx: RunContext) -> RunResult:
    from paperzoo.train import Trainer

    data_seed = torch.load(_shared_data(ctx), weights_only=True)["seed"]
    torch.manual_seed(cfg.seed)
    method = _SlowRegression(bn=True, dropout=0.1)
    optim = OptimConfig(name="sgd", lr=cfg.lr, momentum=0.9, weight_decay=0.0, warmup_steps=0)
    trainer = Trainer(
        method, _LinearTarget(48, data_seed, augment=True), ctx, cfg.trainer, optim,
        batch_size=8, num_workers=0, seed=cfg.seed,
    )  # fmt: skip
    state = trainer.fit()
    held_out = _LinearTarget(64, data_seed + 1)
    model = trainer.model.eval()
    with torch.no_grad():
        pred = model.net(held_out.x).squeeze(1)
    err = pred - held_out.y
    metrics = {"val_mse": float(err.pow(2).mean()), "val_mae": float(err.abs().mean())}
    return RunResult(metrics=metrics, steps=state.step)
