"""CPU step time and peak memory of adversarial flow training at the tiny size: one
discriminator step (the generator's forward without gradients, then D on real, fake and the 25%
finite-difference copies of both, backward, AdamW) and one generator step (G forward and
backward, D on real without gradients and on the gradient-normalised fake), with the
flow-matching step of the same DiT for reference.

Each row: the median wall-clock and process-CPU time of one step over ``--steps`` steps after
``--warmup``; the memory of one step: the tensors autograd saves for the backward (counted
through ``torch.autograd.graph.saved_tensors_hooks``, the activation memory that dominates a
step's peak besides the weights, gradients and AdamW moments), the largest single op's
allocation (``torch.profiler`` with ``profile_memory``, a lower bound on the peak) and the
process's peak resident memory (``resource.getrusage`` ru_maxrss, which only grows; most of it
is torch itself). Timings are noisy on a shared machine; they never go into pass/fail tests.

    python packages/advflow/bench/bench_step.py                  # tiny, batch 32, 1 thread
    python packages/advflow/bench/bench_step.py --batch 64 --threads 2
"""

from __future__ import annotations

import argparse

import torch

from paperzoo.advflow.method import AdvFlow
from paperzoo.advflow.model import TINY, advflow_tiny_1nfe, advflow_tiny_discriminator
from paperzoo.advflow.recipes import TINY_BATCH
from paperzoo.gen.dit import DiT
from paperzoo.gen.flow import FlowMatching
from paperzoo.train.bench import Step, markdown_table, measure_step


def _adamw(module: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=1e-4, betas=(0.0, 0.9), weight_decay=0.01)


def _stepper(method: torch.nn.Module, name: str | None, opt: torch.optim.Optimizer, batch) -> Step:
    def step() -> None:
        if name is None:
            out = method.training_step(batch, 0)
        else:
            out = method.training_step(batch, 1 if name == "generator" else 0, name)
        out["loss"].backward()
        opt.step()
        for p in method.parameters():
            p.grad = None

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=TINY_BATCH)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28, generator=g) * 2 - 1
    y = torch.randint(0, 10, (args.batch,), generator=g)
    method = AdvFlow(advflow_tiny_1nfe(), advflow_tiny_discriminator())
    n_g = sum(p.numel() for p in method.generator.parameters())
    n_d = sum(p.numel() for p in method.discriminator.parameters())
    fm = FlowMatching(DiT(**TINY))
    timing = {"steps": args.steps, "warmup": args.warmup}
    rows = [
        measure_step("flow matching (reference)", _stepper(fm, None, _adamw(fm), (x, y)),
                     params=sum(p.numel() for p in fm.parameters()), **timing),
        measure_step("advflow discriminator step",
                     _stepper(method, "discriminator", _adamw(method.discriminator), (x, y)),
                     params=n_d, **timing),
        measure_step("advflow generator step",
                     _stepper(method, "generator", _adamw(method.generator), (x, y)),
                     params=n_g, **timing),
    ]  # fmt: skip
    print(f"tiny size (28 x 28 digits, {TINY['depth']} blocks x {TINY['hidden_size']}, patch "
          f"{TINY['patch_size']}), batch {args.batch}, {args.threads} thread(s), median of "
          f"{args.steps} steps")  # fmt: skip
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
