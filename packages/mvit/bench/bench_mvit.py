"""CPU throughput of paperzoo's MViT-B 16x4 against pytorchvideo's, side by side in one process.

Both models hold the same weights (pytorchvideo's random init, loaded into ours through the
converter) and their outputs are checked to agree before anything is timed. Forward (eval,
no grad) and one training step (forward, cross-entropy, backward, SGD step) are timed in
alternating order, ``--repeats`` times each after a warm-up, and the medians are compared:
``ratio = pytorchvideo time / paperzoo time`` (>= 1.0: ours is at least as fast).

    python packages/mvit/bench/bench_mvit.py                 # 16x224^2, batch 1 (~2 min)
    python packages/mvit/bench/bench_mvit.py --frames 8 --size 160 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn


def _median_seconds(fn: Callable[[], None], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _forward(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            model(x)

    return run


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)

    def run() -> None:
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)

    from pytorchvideo.models.hub import vision_transformers as ptv

    from paperzoo.core.checkpoint import load_state_dict_strict
    from paperzoo.kernels import dispatch_info
    from paperzoo.mvit import model as M
    from paperzoo.mvit.convert import convert_state_dict

    torch.manual_seed(0)
    kwargs = dict(spatial_size=args.size, temporal_size=args.frames)
    reference = ptv.mvit_base_16x4(**kwargs)
    ours = M.mvit_base_16x4(**kwargs)
    load_state_dict_strict(ours, convert_state_dict(reference.state_dict()))
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    y = torch.randint(0, 400, (args.batch,))
    reference.eval()
    ours.eval()
    with torch.no_grad():
        diff = (reference(x) - ours(x)).abs().max().item()
    print(f"max |pytorchvideo - paperzoo| logits: {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit("outputs differ: not timing two different functions")

    rows = []
    for label, make, train in (("forward", _forward, False), ("train step", _train_step, True)):
        runs = {}
        for name, model in (("pytorchvideo", reference), ("paperzoo", ours)):
            model.train(train)
            runs[name] = make(model, x, y) if train else make(model, x)
            runs[name]()  # warm-up (and the attention backend's one-time probe)
        times: dict[str, list[float]] = {"pytorchvideo": [], "paperzoo": []}
        for rep in range(args.repeats):  # alternate who goes first
            order = ("pytorchvideo", "paperzoo") if rep % 2 == 0 else ("paperzoo", "pytorchvideo")
            for name in order:
                times[name] += _median_seconds(runs[name], 1)
        ref_s = statistics.median(times["pytorchvideo"])
        our_s = statistics.median(times["paperzoo"])
        rows.append((label, ref_s, our_s))

    print(
        f"\nMViT-B 16x4, CPU, {torch.get_num_threads()} threads, input {args.batch}x3x"
        f"{args.frames}x{args.size}x{args.size}, median of {args.repeats}"
    )
    chosen = sorted(set(dispatch_info()["choices"].values()))
    print(f"paperzoo attention backend(s) chosen: {', '.join(chosen) or 'none recorded'}")
    header = f"{'':<11} {'pytorchvideo':>14} {'paperzoo':>14} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for label, ref_s, our_s in rows:
        clips = args.batch
        print(
            f"{label:<11} {ref_s * 1e3:>8.0f} ms {clips / ref_s:>4.2f}/s "
            f"{our_s * 1e3:>6.0f} ms {clips / our_s:>4.2f}/s {ref_s / our_s:>6.2f}x"
        )


if __name__ == "__main__":
    main()
