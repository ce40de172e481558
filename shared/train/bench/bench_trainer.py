"""Trainer throughput against a hand-written PyTorch loop: same model, data, optimizer, schedule.

Model: a small CIFAR-style ResNet (3 stages of one BasicBlock each) on random 3x32x32 images
with 10 classes, SGD momentum 0.9 with cosine LR, batch 64. Both loops read the same
TensorDataset through a DataLoader. The Trainer keeps its defaults (metrics.jsonl every 10
steps, TensorBoard, per-sample seeding for exact resume) but writes no intermediate checkpoint;
its one-off start-up and end-of-run costs (final checkpoint, model.safetensors, loss.png) are
reported separately, not counted in the loop's images/s. Runs alternate (rotating the order)
and the median of ``--repeats`` is shown, by wall time and by process CPU time (the latter is
the fairer measure on a shared CPU machine; on CUDA the wall time is what counts).

    python shared/train/bench/bench_trainer.py                # CPU
    python shared/train/bench/bench_trainer.py --device cuda  # GPU, bf16 autocast in both loops
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.core import OptimConfig, RecipeSpec, RunContext, TrainerConfig
from paperzoo.train import Trainer
from paperzoo.train.optim import lr_factor


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.short(x))


class SmallResNet(nn.Module):
    """A Trainer method too: ``training_step`` is cross-entropy on (images, labels)."""

    def __init__(self, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.blocks = nn.Sequential(
            BasicBlock(width, width, 1),
            BasicBlock(width, 2 * width, 2),
            BasicBlock(2 * width, 4 * width, 2),
        )
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))

    def training_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        x, y = batch
        return {"loss": F.cross_entropy(self(x), y)}


def _data(n: int) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(0)
    return torch.utils.data.TensorDataset(
        torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    )


OPTIM = OptimConfig(name="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine")


@dataclass
class _Rate:
    images: int
    wall_s: float
    cpu_s: float  # process CPU time: robust to other jobs on a shared machine (CPU runs only)

    @property
    def per_s(self) -> float:
        return self.images / self.wall_s

    @property
    def per_cpu_s(self) -> float:
        return self.images / self.cpu_s


def plain_loop(data, steps: int, batch: int, device: torch.device, amp: bool) -> _Rate:
    """The reference: what one would write by hand."""
    torch.manual_seed(0)
    model = SmallResNet().to(device).train()
    opt = torch.optim.SGD(
        model.parameters(), lr=OPTIM.lr, momentum=OPTIM.momentum, weight_decay=OPTIM.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, OPTIM, steps, 0, OPTIM.lr)
    )
    loader = torch.utils.data.DataLoader(
        data, batch_size=batch, shuffle=True, drop_last=True, pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    )
    _sync(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    done = 0
    while done < steps:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast:
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if done == steps:
                break
    _sync(device)
    return _Rate(steps * batch, time.perf_counter() - start, time.process_time() - cpu_start)


def trainer_loop(
    data, steps: int, batch: int, device: torch.device, amp: bool, deterministic: bool
) -> tuple[float, float]:
    """The Trainer on the same job. Returns (images/s of the loop, seconds of one-off costs)."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(
            out_dir=Path(tmp), recipe=RecipeSpec(name="bench", config="x:y", runner="x:z")
        )
        cfg = TrainerConfig(
            max_steps=steps, checkpoint_every=0, log_every=10, progress=False, tensorboard=True,
            device=str(device), amp="bf16" if amp else "off", deterministic_data=deterministic,
        )  # fmt: skip
        t0 = time.perf_counter()
        trainer = Trainer(SmallResNet(), data, ctx, cfg, OPTIM, batch_size=batch)
        setup = time.perf_counter() - t0
        timings = {}
        for name in ("_finish", "save_checkpoint"):  # the end-of-run writes, timed apart
            original = getattr(trainer, name)

            def timed(*a, _original=original, _name=name, **k):
                _sync(device)
                t, c = time.perf_counter(), time.process_time()
                try:
                    return _original(*a, **k)
                finally:
                    timings[_name] = (time.perf_counter() - t, time.process_time() - c)

            setattr(trainer, name, timed)
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.fit()
        _sync(device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        one_off_wall = sum(w for w, _ in timings.values())
        one_off_cpu = sum(c for _, c in timings.values())
        return _Rate(steps * batch, wall - one_off_wall, cpu - one_off_cpu), setup + one_off_wall


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=0, help="default: 60 on CPU, 400 on CUDA")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: default)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    steps = args.steps or (400 if device.type == "cuda" else 60)
    amp = device.type == "cuda"
    data = _data(max(4096, 4 * args.batch_size))
    # warm-up (allocator, cuDNN autotuning, lazy imports) for both
    plain_loop(data, 5, args.batch_size, device, amp)
    trainer_loop(data, 5, args.batch_size, device, amp, True)
    runs: dict[str, list[_Rate]] = {"plain": [], "trainer": [], "trainer_fast": []}
    one_off = []
    jobs = {
        "plain": lambda: plain_loop(data, steps, args.batch_size, device, amp),
        "trainer": lambda: trainer_loop(data, steps, args.batch_size, device, amp, True),
        "trainer_fast": lambda: trainer_loop(data, steps, args.batch_size, device, amp, False),
    }
    order = list(jobs)
    for repeat in range(args.repeats):
        # rotate the order so no loop always runs first (machine drift, allocator state)
        for key in order[repeat % 3 :] + order[: repeat % 3]:
            result = jobs[key]()
            if isinstance(result, tuple):
                result, extra = result
                if key == "trainer":
                    one_off.append(extra)
            runs[key].append(result)
    print(
        f"device={device} amp={'bf16' if amp else 'off'} steps={steps} batch={args.batch_size} "
        f"repeats={args.repeats} threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    wall = {k: statistics.median(r.per_s for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r.per_cpu_s for r in v) for k, v in runs.items()}
    labels = {
        "plain": "plain PyTorch",
        "trainer": "Trainer (default)",
        "trainer_fast": "Trainer (deterministic_data=False)",
    }
    rows = [("loop", "images/s", "overhead", "images/CPU-s", "overhead (CPU)")]
    for key, label in labels.items():
        over = (
            "-" if key == "plain" else f"{100 * (wall['plain'] - wall[key]) / wall['plain']:+.1f}%"
        )
        over_cpu = (
            "-" if key == "plain" else f"{100 * (cpu['plain'] - cpu[key]) / cpu['plain']:+.1f}%"
        )
        rows.append((label, f"{wall[key]:.1f}", over, f"{cpu[key]:.1f}", over_cpu))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print(
            "  ".join(
                c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("(medians; overhead = how much slower than the plain loop; CPU-s = process CPU time)")
    print(
        "Trainer one-off costs per run (setup + final checkpoint/safetensors/loss.png): "
        f"{statistics.median(one_off):.2f} s"
    )
    for key, rates in runs.items():
        print(f"  {key:13s} images/s per run: {[round(r.per_s, 1) for r in rates]}")


if __name__ == "__main__":
    main()
