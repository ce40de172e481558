"""CPU throughput of SlowFast R50 8x8: paperzoo vs PyTorchVideo 0.1.5, side by side.

Both models hold the same weights (PyTorchVideo's random init, converted), see the same clips
and run in this one process, timed in alternation (the order flips every repeat) so that load
from other processes hits both alike. Rows: inference forward (eval, ``inference_mode``) and
one training step (forward, cross-entropy, backward, SGD step). Reported: clips/s (median over
repeats) and ours / reference; >= 1.0 means ours is no slower.

The default clock is this process's CPU time (``time.process_time``): on a machine shared with
other jobs (CI runners, the 2-core boxes this repo is tested on) wall time mostly measures how
long each model waited for a core, and the ratio swings by +-20 % from run to run. CPU time
measures the work each model does; on an idle machine the two clocks agree up to the thread
count. ``--clock wall`` gives wall-clock throughput.

    python packages/slowfast/bench/bench_slowfast.py                # 1 x (8 + 32) x 112², 2 threads
    python packages/slowfast/bench/bench_slowfast.py --clock wall --size 224
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from torch import nn


def _models(size: int) -> tuple[nn.Module, nn.Module]:
    import pytorchvideo.models.hub as ptv_hub

    from paperzoo.slowfast import convert
    from paperzoo.slowfast import model as models

    side = size // 32
    pool = ((8, side, side), (32, side, side))
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ptv_hub.slowfast_r50(head_pool_kernel_sizes=pool)
    ours = models.slowfast_r50(head_pool_kernel_sizes=pool)
    ours.load_state_dict(convert.from_pytorchvideo(ref.state_dict()))
    return ref, ours


def _clips(batch: int, size: int, channels_last: bool = False) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    clips = [
        torch.randn(batch, 3, 8, size, size, generator=g),
        torch.randn(batch, 3, 32, size, size, generator=g),
    ]
    if channels_last:
        clips = [c.contiguous(memory_format=torch.channels_last_3d) for c in clips]
    return clips


def _forward(model: nn.Module, clips: list[torch.Tensor]) -> None:
    with torch.inference_mode():
        model([c for c in clips])  # a fresh list: PyTorchVideo's stem writes into it


def _train_step(
    model: nn.Module, clips: list[torch.Tensor], labels: torch.Tensor, opt: torch.optim.Optimizer
) -> None:
    opt.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model([c for c in clips]), labels)
    loss.backward()
    opt.step()


def _time(fn, clock) -> float:
    start = clock()
    fn()
    return clock() - start


def _race(candidates: dict[str, object], repeats: int, clock=time.perf_counter) -> dict[str, float]:
    """Median seconds per call of each candidate, timed in alternating order."""
    names = list(candidates)
    for name in names:  # warm-up: allocator, oneDNN primitive caches
        candidates[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(_time(candidates[name], clock))
    return {n: statistics.median(t) for n, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=112, help="crop side (multiple of 32)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=2, help="torch intra-op threads (the target: 2 cores)"
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="also time ours in channels_last_3d"
    )
    parser.add_argument("--clock", choices=("process", "wall"), default="process")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    ref, ours = _models(args.size)
    clips = _clips(args.batch, args.size)
    rows = []

    ref.eval(), ours.eval()
    forward = {
        "pytorchvideo": lambda: _forward(ref, clips),
        "paperzoo": lambda: _forward(ours, clips),
    }
    if args.channels_last:
        ours_cl = _models(args.size)[1].eval().to(memory_format=torch.channels_last_3d)
        clips_cl = _clips(args.batch, args.size, channels_last=True)
        forward["paperzoo channels_last_3d"] = lambda: _forward(ours_cl, clips_cl)
    rows.append(("forward (eval)", _race(forward, args.repeats, clock)))

    ref.train(), ours.train()
    labels = torch.zeros(args.batch, dtype=torch.long)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=1e-3, momentum=0.9)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=1e-3, momentum=0.9)
    step = {
        "pytorchvideo": lambda: _train_step(ref, clips, labels, opt_ref),
        "paperzoo": lambda: _train_step(ours, clips, labels, opt_ours),
    }
    rows.append(("train step", _race(step, args.repeats, clock)))

    print(
        f"SlowFast R50 8x8, CPU, {args.threads} threads, batch {args.batch}, "
        f"clips 8+32 x {args.size}², median of {args.repeats}, {args.clock} clock"
    )
    unit = "clips/s" if args.clock == "wall" else "clips/cpu-s"
    print(f"{'row':<16} {'model':<28} {unit:>11} {'ours/ref':>9}")
    for row, medians in rows:
        ref_rate = args.batch / medians["pytorchvideo"]
        for name, seconds in medians.items():
            rate = args.batch / seconds
            ratio = "" if name == "pytorchvideo" else f"{rate / ref_rate:9.3f}"
            print(f"{row:<16} {name:<28} {rate:11.3f} {ratio:>9}")


if __name__ == "__main__":
    main()
