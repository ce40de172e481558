"""Run under ``torchrun --nproc-per-node 2`` (gloo, CPU) by test_gan_trainer.py.

Trains the tiny GAN (two optimizers, a D-only warm-up step, then one D step per G step) with DDP
and with FSDP2 (the whole method as one unit, and G and D as units of their own), each straight
and resumed from its step-3 checkpoint, and saves each rank's final weights, so the test can
compare the ranks with each other, with one process on the doubled batch, and with the resume.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tiny_gan import Points, TinyGan, gan_configs
from tiny_methods import make_ctx

from paperzoo.train import Trainer
from paperzoo.train import distributed as dist_utils
from paperzoo.train.gan import GanStepPlan

BATCH, MAX_STEPS = 8, 6


class ShardedTinyGan(TinyGan):
    """FSDP2 shards the generator and the discriminator as units of their own."""

    def fsdp_modules(self):
        return [self.generator, self.discriminator]


def train(out: Path, resume: bool = False, units: bool = False, **overrides) -> None:
    torch.manual_seed(1 if resume else 0)
    trainer_cfg, optim_cfg = gan_configs(max_steps=MAX_STEPS, checkpoint_every=3, **overrides)
    ctx = make_ctx(
        out, resume=resume, rank=dist_utils.get_rank(), world_size=dist_utils.get_world_size()
    )
    method = ShardedTinyGan() if units else TinyGan()
    trainer = Trainer(
        method, Points(n=64, with_noise=True), ctx, trainer_cfg, optim_cfg, batch_size=BATCH,
        step_plan=GanStepPlan(d_steps_per_g=1, d_warmup_steps=1),
        clip_grad_norm={"generator": 0.5},
    )  # fmt: skip
    state = trainer.fit()
    assert state.step == MAX_STEPS
    if resume:
        assert state.resumed_from is not None and state.resumed_from.endswith("step_0000003.pt")
    if trainer.strategy == "fsdp":  # every rank gathers the full (unsharded) weights
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        weights = get_model_state_dict(
            trainer.model, options=StateDictOptions(full_state_dict=True)
        )
    else:
        weights = trainer.model.state_dict()
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    save_file(tensors, str(out / f"rank{dist_utils.get_rank()}.safetensors"))


def resume_from_step3(root: Path, label: str, **overrides) -> None:
    """Train into ``root/label`` straight, then again resumed from a copy of its step 3."""
    train(root / label, **overrides)
    resumed = root / f"{label}_resumed"
    if dist_utils.is_main():
        (resumed / "checkpoints").mkdir(parents=True)
        shutil.copy(root / label / "checkpoints" / "step_0000003.pt", resumed / "checkpoints")
    dist_utils.barrier()
    train(resumed, resume=True, **overrides)


def main() -> None:
    root = Path(sys.argv[1])
    dist_utils.init_distributed("cpu")
    resume_from_step3(root, "ddp", strategy="ddp", ema_decay=0.5)  # no EMA with FSDP
    resume_from_step3(root, "fsdp", strategy="fsdp")
    resume_from_step3(root, "fsdp_units", strategy="fsdp", units=True)
    dist_utils.barrier()
    if dist_utils.is_main():
        (root / "ok").write_text("ok")
    dist_utils.destroy_distributed()


if __name__ == "__main__":
    main()
