"""Train the tiny model (dropout, BN, random augmentation) for test_resume.py.

Usage: train_for_resume.py OUT_DIR NUM_WORKERS [resume]. With PZ_STEP_SLEEP=seconds each step
sleeps, so the test can SIGKILL the process part-way through.
"""

from __future__ import annotations

import os
import sys
import time

import torch
from tiny_methods import RegressionData, TinyRegression, make_ctx, tiny_configs

from paperzoo.train import Trainer

MAX_STEPS = 16


class SlowTinyRegression(TinyRegression):
    def training_step(self, batch, step):
        time.sleep(float(os.environ.get("PZ_STEP_SLEEP", "0")))
        return super().training_step(batch, step)


def main() -> None:
    out, num_workers = sys.argv[1], int(sys.argv[2])
    resume = len(sys.argv) > 3 and sys.argv[3] == "resume"
    # A resumed run starts from a differently initialised model: everything must come from the
    # checkpoint.
    torch.manual_seed(123 if resume else 0)
    method = SlowTinyRegression(bn=True, dropout=0.2)
    trainer_cfg, optim_cfg = tiny_configs(
        max_steps=MAX_STEPS,
        checkpoint_every=3,
        keep_checkpoints=2,
        grad_accum_steps=2,
        ema_decay=0.9,
    )
    trainer = Trainer(
        method, RegressionData(n=40, augment=True), make_ctx(out, resume=resume),
        trainer_cfg, optim_cfg, batch_size=6, num_workers=num_workers, seed=7,
    )  # fmt: skip
    state = trainer.fit()
    print(f"done step={state.step} resumed_from={state.resumed_from}", flush=True)


if __name__ == "__main__":
    main()
