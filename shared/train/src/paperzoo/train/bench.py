"""Step-time and memory measurement for the members' ``bench/bench_*.py`` scripts (``nox -s bench``).

One training step is a zero-argument callable (forward, loss, backward, optimizer step). Each
measured row holds the median wall-clock and process-CPU time over ``steps`` calls after
``warmup``, the largest single-op allocation ``torch.profiler`` sees in one call (a lower bound
on the step's peak), the bytes autograd saves for backward in one call, and the process's peak
resident memory so far (``ru_maxrss`` only grows: measure rows in order of increasing size).
Timings from shared machines are noisy: they go into notes and READMEs, never into pass/fail
tests.

    from paperzoo.train.bench import measure_step, markdown_table
    rows = [measure_step("generator", g_step, params=n_g), measure_step("discriminator", d_step)]
    print(markdown_table(rows))
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["markdown_table", "measure_step", "optimizer_step"]

Step = Callable[[], None]


def optimizer_step(loss_fn: Callable[[], torch.Tensor], opt: torch.optim.Optimizer) -> Step:
    """``loss_fn().backward()``, ``opt.step()``, ``opt.zero_grad(set_to_none=True)`` as one step."""

    def step() -> None:
        loss_fn().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def _largest_op_allocation_mb(step: Step) -> float:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    return max((e.cpu_memory_usage for e in prof.key_averages()), default=0) / 2**20


def _saved_for_backward_mb(step: Step) -> float:
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return total / 2**20


def measure_step(
    row: str, step: Step, *, params: int | None = None, steps: int = 10, warmup: int = 3
) -> dict[str, Any]:
    """Time ``step`` and measure its memory; ``params``: the trained parameter count shown."""
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "row": row,
        "params_M": None if params is None else params / 1e6,
        "step_ms": 1e3 * statistics.median(wall),
        "cpu_ms": 1e3 * statistics.median(cpu),
        "op_peak_MB": _largest_op_allocation_mb(step),
        "saved_MB": _saved_for_backward_mb(step),
        "rss_peak_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


_COLUMNS = (
    ("params_M", "trained params (M)", "{:.2f}"),
    ("step_ms", "step wall (ms)", "{:.0f}"),
    ("cpu_ms", "step CPU (ms)", "{:.0f}"),
    ("op_peak_MB", "largest op alloc (MB)", "{:.1f}"),
    ("saved_MB", "saved for backward (MB)", "{:.1f}"),
    ("rss_peak_MB", "peak RSS (MB)", "{:.0f}"),
)


def markdown_table(
    rows: Sequence[dict[str, Any]], extra: Sequence[tuple[str, str, str]] = ()
) -> str:
    """The rows of :func:`measure_step` as a Markdown table; ``extra``: more (key, header, format)
    columns that the script added to its rows (e.g. a ratio)."""
    columns = [*_COLUMNS, *extra]
    lines = [
        "| row | " + " | ".join(header for _, header, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for r in rows:
        cells = ["–" if r.get(key) is None else fmt.format(r[key]) for key, _, fmt in columns]
        lines.append(f"| {r['row']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
