"""Attention backends: ms and TFLOP/s per backend x dtype x N x D, ratios vs torch SDPA.

Every backend is timed in the same run, interleaved per configuration, so the ratios compare
like with like. Forward only, non-causal, FLOPs = 4·B·H·N²·D.

On CUDA: fp16 and bf16, N in {256, 1024, 4096, 16384}, D in {64, 128}, every backend that runs
(xformers, triton, sdpa), timed with CUDA events. On CPU the grid shrinks so the script ends in
a couple of minutes (fp32 and bf16, N up to 4096, one batch of 4 heads; the Triton interpreter
is skipped, it is a test tool), and the script also measures the dispatch overhead of
``attention(..., backend="auto")`` over raw ``F.scaled_dot_product_attention`` at N >= 1024.

    python kernels/bench/bench_attention.py            # full grid for this device
    python kernels/bench/bench_attention.py --quick    # N <= 1024, fewer repeats
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit

import torch
import torch.nn.functional as F

from paperzoo.kernels import BackendUnavailableError, attention, explain
from paperzoo.kernels.dispatch import _resolve


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_once(fn, device: torch.device) -> float:
    """Milliseconds of one call."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def _median_ms(fns: dict, device: torch.device, budget_s: float, min_reps: int) -> dict:
    """Median ms of each fn, calls interleaved round-robin so drift hits all alike."""
    for fn in fns.values():  # warm-up (and autotuning / first-call compilation)
        fn()
    _sync(device)
    times: dict = {name: [] for name in fns}
    t_end = time.perf_counter() + budget_s
    while min(len(t) for t in times.values()) < min_reps or time.perf_counter() < t_end:
        for name, fn in fns.items():
            times[name].append(_time_once(fn, device))
        if min(len(t) for t in times.values()) >= 200:
            break
    return {name: statistics.median(t) for name, t in times.items()}


def _usable_backends(q, k, v) -> list[str]:
    names = []
    for name, reason in explain(q, k, v):
        if reason == "ok":
            names.append(name)
        elif q.device.type == "cuda":
            print(f"  skip {name}: {reason}")
    if "sdpa" not in names:
        names.append("sdpa")
    return names


def bench_backends(device: torch.device, quick: bool) -> None:
    if device.type == "cuda":
        dtypes, lengths, batch, heads = (
            [torch.float16, torch.bfloat16],
            [256, 1024, 4096, 16384],
            4,
            16,
        )
        budget, min_reps = 0.5, 10
    else:
        dtypes, lengths, batch, heads = [torch.float32, torch.bfloat16], [256, 1024, 4096], 1, 4
        budget, min_reps = 0.3, 3
    if quick:
        lengths = [n for n in lengths if n <= 1024]
        budget, min_reps = budget / 3, 2
    print(f"\nattention forward on {device} (B={batch}, H={heads}, non-causal)")
    header = (
        f"{'backend':<10} {'dtype':<9} {'N':>6} {'D':>4} {'ms':>10} {'TFLOP/s':>9} {'vs sdpa':>8}"
    )
    print(header)
    print("-" * len(header))
    for dtype in dtypes:
        for d in (64, 128):
            for n in lengths:
                g = torch.Generator(device=device).manual_seed(0)
                q, k, v = (
                    torch.randn(batch, heads, n, d, generator=g, device=device, dtype=dtype)
                    for _ in range(3)
                )
                names = _usable_backends(q, k, v)
                fns = {}
                for name in names:
                    try:
                        attention(q, k, v, backend=name)
                    except BackendUnavailableError as exc:
                        print(f"  skip {name}: {exc}")
                        continue
                    fns[name] = lambda name=name, q=q, k=k, v=v: attention(q, k, v, backend=name)
                ms = _median_ms(fns, device, budget, min_reps)
                flops = 4 * batch * heads * n * n * d
                for name, t in ms.items():
                    ratio = t / ms["sdpa"]
                    print(
                        f"{name:<10} {str(dtype).replace('torch.', ''):<9} {n:>6} {d:>4} "
                        f"{t:>10.3f} {flops / t / 1e9:>9.3f} {ratio:>8.2f}"
                    )


def bench_dispatch_overhead(device: torch.device, quick: bool) -> None:
    """auto dispatch vs raw SDPA: paired runs at N >= 1024, and the dispatch cost timed alone."""
    print(
        "\ndispatch overhead: attention(backend='auto') vs F.scaled_dot_product_attention "
        f"({device})"
    )
    pairs = 15 if quick else 60
    g = torch.Generator(device=device).manual_seed(0)
    # The dispatch cost itself: everything attention() runs besides the kernel (pure Python,
    # so it can be timed precisely even on a busy machine; min over repeats, then median).
    q, k, v = (torch.randn(1, 8, 1024, 64, generator=g, device=device) for _ in range(3))
    resolve = lambda: _resolve(q, k, v, None, False, 0.0, "auto")  # noqa: E731
    resolve()
    samples = [min(timeit.repeat(resolve, number=1000, repeat=5)) / 1000 * 1e6 for _ in range(5)]
    extra_us = statistics.median(samples)
    print(f"dispatch cost (signature, registry check, cache lookup): {extra_us:.2f} us/call")
    header = (
        f"{'N':>6} {'D':>4} {'sdpa ms':>10} {'auto ms':>10} {'paired auto/sdpa-1':>19} "
        f"{'dispatch us / sdpa':>19}"
    )
    print(header)
    print("-" * len(header))
    for n in (1024, 4096) if not quick else (1024,):
        n_pairs = pairs if n <= 1024 else max(6, pairs // 5)  # N=4096 costs ~16x per call
        q, k, v = (torch.randn(1, 8, n, 64, generator=g, device=device) for _ in range(3))
        for _ in range(2):
            attention(q, k, v)
            F.scaled_dot_product_attention(q, k, v)
        sdpa_t, auto_t, ratios = [], [], []
        for i in range(n_pairs):  # alternate the order so neither side always runs first
            order = ("sdpa", "auto") if i % 2 == 0 else ("auto", "sdpa")
            got = {}
            for name in order:
                if name == "auto":
                    fn = lambda q=q, k=k, v=v: attention(q, k, v)  # noqa: E731
                else:
                    fn = lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
                got[name] = _time_once(fn, device)
            sdpa_t.append(got["sdpa"])
            auto_t.append(got["auto"])
            ratios.append(got["auto"] / got["sdpa"])
        sdpa_ms = statistics.median(sdpa_t)
        print(
            f"{n:>6} {64:>4} {sdpa_ms:>10.3f} {statistics.median(auto_t):>10.3f} "
            f"{(statistics.median(ratios) - 1) * 100:>+18.2f}% "
            f"{extra_us / (sdpa_ms * 1e3) * 100:>+18.4f}%"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grid, fewer repeats")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if present)")
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    bench_backends(device, args.quick)
    if device.type == "cpu":
        bench_dispatch_overhead(device, args.quick)


if __name__ == "__main__":
    main()
