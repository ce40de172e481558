"""Training throughput of MoCo through paperzoo.train.Trainer vs. a hand-written PyTorch loop.

Same model (mocov2_resnet10_narrow), same data (bundled MNIST with MoCo v2 aug+ two crops,
batch 128 in 4 shuffled BN groups), same optimizer (SGD + cosine), one process on CPU. Prints
images/s for each and the Trainer's overhead. Run:

    python packages/mocov2/bench/bench_moco_trainer.py [--steps 30] [--warmup 5]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from paperzoo.core import RunContext, create_model, get_recipe
from paperzoo.core.config import apply_overrides
from paperzoo.mocov2.data import build_datasets
from paperzoo.mocov2.method import MoCoMethod
from paperzoo.mocov2.recipes import tiny_config
from paperzoo.train import Trainer


def _method(cfg) -> MoCoMethod:
    torch.manual_seed(0)
    model = create_model(cfg.model, queue_size=cfg.moco.queue_size, momentum=cfg.moco.momentum,
                         temperature=cfg.moco.temperature)  # fmt: skip
    return MoCoMethod(model, bn_splits=cfg.moco.bn_splits)


def plain_loop(cfg, dataset, steps: int, warmup: int) -> float:
    method = _method(cfg)
    params = [p for p in method.parameters() if p.requires_grad]
    opt = torch.optim.SGD(
        params, lr=cfg.optim.lr, momentum=0.9, weight_decay=cfg.optim.weight_decay
    )
    total = steps + warmup
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total))
    )
    loader = DataLoader(dataset, batch_size=cfg.global_batch_size, shuffle=True, drop_last=True,
                        num_workers=cfg.data.num_workers)  # fmt: skip
    done, start = 0, None
    while done < total:
        for batch in loader:
            if done == warmup:
                start = time.perf_counter()
            loss = method.training_step(batch, done)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if done == total:
                break
    return steps * cfg.global_batch_size / (time.perf_counter() - start)


def trainer_loop(cfg, dataset, steps: int, warmup: int) -> float:
    """Images/s of the Trainer's steps after ``warmup``, from its own per-step log records."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(out_dir=Path(tmp), recipe=get_recipe("mocov2_tiny"))
        total = steps + warmup
        cfg_n = apply_overrides(cfg, [f"trainer.max_steps={total}", "trainer.checkpoint_every=0",
                                      "trainer.progress=false", "trainer.tensorboard=false",
                                      "trainer.log_every=1"])  # fmt: skip
        trainer = Trainer(_method(cfg_n), dataset, ctx, cfg_n.trainer, cfg_n.optim,
                          batch_size=cfg.global_batch_size, num_workers=cfg.data.num_workers)  # fmt: skip
        trainer.fit()
        rows = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    # Each record covers one step: seconds = batch / samples_per_sec.
    timed = [r for r in rows if "samples_per_sec" in r and r["step"] > warmup]
    seconds = sum(cfg.global_batch_size / r["samples_per_sec"] for r in timed)
    return len(timed) * cfg.global_batch_size / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    cfg = tiny_config()
    dataset = build_datasets(cfg).pretrain
    plain = plain_loop(cfg, dataset, args.steps, args.warmup)
    ours = trainer_loop(cfg, dataset, args.steps, args.warmup)
    print(f"MoCo tiny ({cfg.model}, batch {cfg.global_batch_size}, {args.steps} timed steps, "
          f"{torch.get_num_threads()} threads)")  # fmt: skip
    print(f"{'loop':<22}{'images/s':>10}")
    print(f"{'plain PyTorch':<22}{plain:>10.1f}")
    print(f"{'paperzoo Trainer':<22}{ours:>10.1f}")
    print(f"{'Trainer overhead':<22}{(plain / ours - 1) * 100:>9.1f}%")


if __name__ == "__main__":
    main()
