"""Train the tiny GAN (two optimizers, EMA of G, clipping, dropout) for test_gan_trainer.py.

Usage: train_gan_for_resume.py OUT_DIR [resume]. With PZ_STEP_SLEEP=seconds each step sleeps,
so the test can SIGKILL the process part-way through. At the end it writes OUT_DIR/final.pt:
the method's and the EMA's state dicts and every optimizer's state dict.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
from tiny_gan import Points, TinyGan, gan_configs
from tiny_methods import make_ctx

from paperzoo.train import Trainer
from paperzoo.train.gan import GanStepPlan

MAX_STEPS = 16


class SlowTinyGan(TinyGan):
    def training_step(self, batch, step, optimizer):
        time.sleep(float(os.environ.get("PZ_STEP_SLEEP", "0")))
        return super().training_step(batch, step, optimizer)


def main() -> None:
    out = Path(sys.argv[1])
    resume = len(sys.argv) > 2 and sys.argv[2] == "resume"
    # A resumed run starts from a differently initialised model: everything must come from the
    # checkpoint.
    torch.manual_seed(123 if resume else 0)
    method = SlowTinyGan(detach_fake=False, dropout=0.2)
    trainer_cfg, optim_cfg = gan_configs(
        max_steps=MAX_STEPS, checkpoint_every=3, keep_checkpoints=2, grad_accum_steps=2,
        ema_decay=0.8,
    )  # fmt: skip
    trainer = Trainer(
        method, Points(n=40), make_ctx(out, resume=resume), trainer_cfg, optim_cfg,
        batch_size=6, seed=7, step_plan=GanStepPlan(d_steps_per_g=2, d_warmup_steps=1),
        clip_grad_norm={"discriminator": 0.05},
    )  # fmt: skip
    state = trainer.fit()
    assert trainer.ema is not None
    torch.save(
        {
            "model": trainer.model.state_dict(),
            "ema": trainer.ema.state_dict(),
            "optimizers": {n: o.state_dict() for n, o in trainer.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in trainer.schedulers.items()},
        },
        out / "final.pt",
    )
    print(f"done step={state.step} resumed_from={state.resumed_from}", flush=True)


if __name__ == "__main__":
    main()
