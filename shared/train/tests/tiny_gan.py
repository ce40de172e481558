"""A tiny GAN (generator + discriminator MLPs on 2-D points) for the several-optimizer tests.

Imported by test_gan_trainer.py and by the subprocess scripts it launches (SIGKILL resume,
torchrun), so every process builds exactly the same model and data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.core import OptimConfig, TrainerConfig

LATENT, DIM = 4, 2


class TinyGan(nn.Module):
    """Non-saturating GAN. ``detach_fake=False`` lets the D loss reach G, to test isolation."""

    def __init__(self, *, detach_fake: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(LATENT, 16), nn.Tanh(), nn.Linear(16, DIM))
        self.discriminator = nn.Sequential(
            nn.Linear(DIM, 16), nn.LeakyReLU(0.2), nn.Dropout(dropout), nn.Linear(16, 1)
        )
        self.detach_fake = detach_fake
        # Which optimizer each on_after_optimizer_step call saw (0: D, 1: G; -1 unused), in a
        # buffer so it is checkpointed.
        self.register_buffer("hook_log", torch.full((64,), -1, dtype=torch.int64))
        self.register_buffer("hook_count", torch.zeros((), dtype=torch.int64))

    def optimizer_param_groups(self) -> dict[str, list[dict]]:
        return {
            "discriminator": [{"params": list(self.discriminator.parameters())}],
            "generator": [{"params": list(self.generator.parameters())}],
        }

    def ema_module(self) -> nn.Module:
        return self.generator

    def trainable_module(self) -> nn.Module:
        return self.generator

    def training_step(self, batch, step: int, optimizer: str) -> dict[str, torch.Tensor]:
        if isinstance(batch, (list, tuple)):  # (real, z): the noise comes with the data
            real, z = batch
        else:
            real = batch
            z = torch.randn(real.shape[0], LATENT, device=real.device)
        fake = self.generator(z)
        if optimizer == "discriminator":
            if self.detach_fake:
                fake = fake.detach()
            d_real, d_fake = self.discriminator(real), self.discriminator(fake)
            loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            return {"loss": loss, "d_real": d_real.detach().mean()}
        d_fake = self.discriminator(fake)
        return {"loss": F.softplus(-d_fake).mean(), "d_fake": d_fake.detach().mean()}

    def on_after_optimizer_step(self, step: int, optimizer: str) -> None:
        self.hook_log[self.hook_count] = 0 if optimizer == "discriminator" else 1
        self.hook_count += 1


class Points(torch.utils.data.Dataset):
    """``n`` fixed points on a noisy ring; ``with_noise``: items are (point, fixed latent z)."""

    def __init__(self, n: int = 64, seed: int = 0, with_noise: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        angle = torch.rand(n, generator=g) * 6.2832
        self.x = torch.stack([angle.cos(), angle.sin()], 1) + 0.05 * torch.randn(n, 2, generator=g)
        self.z = torch.randn(n, LATENT, generator=g) if with_noise else None

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i] if self.z is None else (self.x[i], self.z[i])


def gan_configs(**trainer_overrides) -> tuple[TrainerConfig, dict[str, OptimConfig]]:
    trainer = TrainerConfig(
        max_steps=12, checkpoint_every=4, keep_checkpoints=2, log_every=2, progress=False,
        tensorboard=False, device="cpu",
    )  # fmt: skip
    for key, value in trainer_overrides.items():
        setattr(trainer, key, value)
    optim = {
        "generator": OptimConfig(
            name="adamw", lr=2e-3, betas=(0.0, 0.9), weight_decay=0.01, schedule="cosine",
            warmup_steps=2,
        ),
        "discriminator": OptimConfig(
            name="adamw", lr=1e-3, betas=(0.5, 0.95), weight_decay=0.0, schedule="constant",
            warmup_steps=3,
        ),
    }  # fmt: skip
    return trainer, optim
