"""paperzoo.train.bench: the counts it reports are the ones a hand computation gives (timings are
only checked to be positive: they never decide a test)."""

from __future__ import annotations

import torch

from paperzoo.train.bench import markdown_table, measure_step, optimizer_step


def test_saved_for_backward_counts_the_saved_operands():
    a = torch.randn(256, 1024, requires_grad=True)  # 1 MiB each
    b = torch.randn(256, 1024, requires_grad=True)
    calls = []

    def step() -> None:
        calls.append(1)
        (a * b).sum().backward()  # mul saves both operands; sum saves nothing

    row = measure_step("mul", step, params=2 * a.numel(), steps=4, warmup=2)
    assert len(calls) == 2 + 4 + 2  # warm-up, timed, then one profiled and one hooked call
    assert row["saved_MB"] == 2.0
    assert row["params_M"] == 2 * 256 * 1024 / 1e6
    assert row["step_ms"] > 0 and row["cpu_ms"] >= 0 and row["rss_peak_MB"] > 0
    assert row["op_peak_MB"] >= 1.0  # the (256, 1024) product


def test_optimizer_step_updates_and_clears_gradients():
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.5)
    optimizer_step(lambda: (2 * w).sum(), opt)()
    assert torch.equal(w.detach(), torch.zeros(3)) and w.grad is None


def test_markdown_table_rows_and_extra_columns():
    rows = [
        {"row": "D", "params_M": None, "step_ms": 12.4, "cpu_ms": 11.6, "op_peak_MB": 3.25,
         "saved_MB": 1.0, "rss_peak_MB": 900.2, "ratio": 2.94},
    ]  # fmt: skip
    table = markdown_table(rows, extra=[("ratio", "vs plain", "{:.1f}x")]).splitlines()
    assert table[0].startswith("| row | trained params (M) |") and table[0].endswith("vs plain |")
    assert table[1] == "|---|" + "---|" * 7
    assert table[2] == "| D | – | 12 | 12 | 3.2 | 1.0 | 900 | 2.9x |"
