"""Tiny methods and datasets shared by the tests and the subprocess scripts they launch.

Kept in one importable module so a test's in-process run and a killed/torchrun subprocess build
exactly the same model and data.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from paperzoo.core import OptimConfig, RecipeSpec, RunContext, TrainerConfig

RECIPE = RecipeSpec(
    name="test_tiny", config="tiny_methods:TrainerConfig", runner="tiny_methods:run"
)


def make_ctx(
    out_dir: str | Path, resume: bool = False, rank: int = 0, world_size: int = 1
) -> RunContext:
    return RunContext(
        out_dir=Path(out_dir), recipe=RECIPE, resume=resume, rank=rank, world_size=world_size
    )


class TinyRegression(nn.Module):
    """An MLP regressor; optional BN and dropout; counts optimizer-step hooks in a buffer."""

    def __init__(
        self, dim: int = 8, hidden: int = 16, bn: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(dim, hidden)]
        if bn:
            layers.append(nn.BatchNorm1d(hidden))
        layers += [nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, 1)]
        self.net = nn.Sequential(*layers)
        # Fixed-size log of the steps on_after_optimizer_step saw (-1: unused), in a buffer so
        # it is checkpointed.
        self.register_buffer("hook_log", torch.full((64,), -1, dtype=torch.int64))
        self.register_buffer("hook_count", torch.zeros((), dtype=torch.int64))
        self.fail_at_step = -1  # raise inside training_step at this step (simulated crash)
        self.seen_dtype: torch.dtype | None = None

    def training_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        if step == self.fail_at_step:
            raise RuntimeError(f"simulated crash at step {step}")
        x, y = batch
        pred = self.net(x).squeeze(1)
        self.seen_dtype = pred.dtype
        loss = (pred.float() - y).pow(2).mean()
        return {"loss": loss, "pred_mean": pred.detach().float().mean()}

    def on_after_optimizer_step(self, step: int) -> None:
        self.hook_log[self.hook_count] = step
        self.hook_count += 1


class RegressionData(torch.utils.data.Dataset):
    """Fixed inputs/targets; ``augment`` adds noise drawn from torch, numpy and python RNGs."""

    def __init__(self, n: int = 64, dim: int = 8, augment: bool = False, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, dim, generator=g)
        self.y = torch.sin(self.x.sum(1))
        self.augment = augment

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        x = self.x[i]
        if self.augment:
            noise = (
                0.1 * torch.randn_like(x) + 0.01 * float(np.random.randn()) + 0.01 * random.random()
            )
            x = x + noise
        return x, self.y[i]


def tiny_configs(**trainer_overrides) -> tuple[TrainerConfig, OptimConfig]:
    trainer = TrainerConfig(
        max_steps=12, checkpoint_every=4, keep_checkpoints=2, log_every=2, progress=False,
        tensorboard=False, device="cpu",
    )  # fmt: skip
    for key, value in trainer_overrides.items():
        setattr(trainer, key, value)
    optim = OptimConfig(name="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4, warmup_steps=2)
    return trainer, optim
