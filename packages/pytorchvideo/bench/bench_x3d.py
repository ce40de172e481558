"""CPU latency of X3D-XS: vanilla vs efficient blocks (fp32, deployable fp32, int8), and our
eager X3D-XS vs PyTorchVideo 0.1.5's, side by side.

PyTorchVideo (arXiv 2111.09887, Accelerator) measured X3D-XS on a Samsung S8 phone (ARM,
QNNPACK): vanilla 1067 ms -> efficient fp32 233 ms (4.6x) -> int8 165 ms (6.5x), input
1x3x4x160x160 as in the Accelerator tutorial. Here: the same models on this x86 CPU, int8
through FX graph mode with the x86 backend. The int8 model is calibrated on random
normalised clips (latency does not depend on the values).

    python packages/pytorchvideo/bench/bench_x3d.py [--iters 10] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from paperzoo.pytorchvideo import (
    convert_to_deployable_form,
    efficient_x3d_xs,
    quantize_int8,
    x3d_xs,
)

PAPER_MS = {"vanilla fp32": 1067.0, "efficient fp32": 233.0, "efficient int8": 165.0}


def _latency_ms(model: torch.nn.Module, x: torch.Tensor, iters: int, warmup: int = 2) -> float:
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    x = torch.randn(1, 3, 4, 160, 160)

    vanilla = x3d_xs().eval()
    efficient = efficient_x3d_xs().eval()
    deployable = convert_to_deployable_form(efficient, x)
    calibration = [torch.randn(2, 3, 4, 160, 160) for _ in range(4)]
    int8 = quantize_int8(deployable, calibration)

    rows = [
        ("vanilla fp32", "X3D-XS (paperzoo.pytorchvideo.x3d)", _latency_ms(vanilla, x, args.iters)),
        (
            "efficient fp32 (original form)",
            "efficient_x3d_xs",
            _latency_ms(efficient, x, args.iters),
        ),
        ("efficient fp32", "convert_to_deployable_form", _latency_ms(deployable, x, args.iters)),
        (
            "efficient int8",
            f"quantize_int8 ({torch.backends.quantized.engine})",
            _latency_ms(int8, x, args.iters),
        ),
    ]
    base = rows[0][2]
    print(
        f"X3D-XS CPU latency, input 1x3x4x160x160, {torch.get_num_threads()} threads, median of {args.iters}"
    )
    print(
        f"{'variant':32s} {'how':40s} {'ms':>8s} {'speed-up':>9s} {'paper ms (S8)':>14s} {'paper x':>8s}"
    )
    for name, how, ms in rows:
        paper = PAPER_MS.get(name)
        paper_ms = f"{paper:.0f}" if paper else "-"
        paper_x = f"{PAPER_MS['vanilla fp32'] / paper:.1f}" if paper else "-"
        print(f"{name:32s} {how:40s} {ms:8.1f} {base / ms:8.2f}x {paper_ms:>14s} {paper_x:>8s}")

    try:
        from pytorchvideo.models.hub import x3d_xs as reference_x3d_xs
    except ImportError:
        print(
            "\npytorchvideo 0.1.5 not installed: skipping the side-by-side (uv sync --group test)"
        )
        return
    reference = reference_x3d_xs(pretrained=False, head_activation=None).eval()
    print(
        "\nX3D-XS eager forward, ours vs PyTorchVideo 0.1.5 (same architecture and weights shape)"
    )
    print(f"{'batch':>5s} {'ours clips/s':>13s} {'pytorchvideo clips/s':>21s} {'ratio':>6s}")
    for batch in (1, 4):
        xb = torch.randn(batch, 3, 4, 160, 160)
        ours = batch / (_latency_ms(vanilla, xb, args.iters) / 1e3)
        theirs = batch / (_latency_ms(reference, xb, args.iters) / 1e3)
        print(f"{batch:5d} {ours:13.1f} {theirs:21.1f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
