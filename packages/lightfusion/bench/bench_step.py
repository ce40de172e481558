"""CPU step time and peak memory of LightFusion training at the tiny size, against the two base
models run separately: the frozen Qwen2 LM's forward on the prompts (what the fused model
spends on the understanding tower), a Wan DiT rectified-flow step with its class-embedding
context (the DiT alone), and the fused step (LM frozen, DiT + fusion layers + context trained).

Each row: the median wall-clock and process-CPU time of one step (forward, loss, backward,
AdamW where something trains) over ``--steps`` steps after ``--warmup``, the trained
parameters, the largest single-op allocation seen by ``torch.profiler`` for one step, and the
process's peak resident memory (``ru_maxrss``, which only grows: rows run in order of
increasing size). Timings are noisy on a shared machine; they never go into pass/fail tests.

    python packages/lightfusion/bench/bench_step.py               # batch 64, 1 thread
    python packages/lightfusion/bench/bench_step.py --batch 16 --threads 2
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

import torch

from paperzoo.lightfusion.data import WordTokenizer, build_prompt_bank
from paperzoo.lightfusion.method import ClassConditionalWan, LightFusionFlow, WanFlow
from paperzoo.lightfusion.model import TINY_CONTEXT_LEN, LightFusion, tiny_dit, tiny_lm


def _profiled_peak_mb(step: Callable[[], None]) -> float:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    return max((e.cpu_memory_usage for e in prof.key_averages()), default=0) / 2**20


def _bench(name: str, step: Callable[[], None], params: list, steps: int, warmup: int) -> dict:
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "row": name,
        "params_M": sum(p.numel() for p in params) / 1e6,
        "step_ms": 1e3 * statistics.median(wall),
        "cpu_ms": 1e3 * statistics.median(cpu),
        "op_peak_MB": _profiled_peak_mb(step),
        "rss_peak_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _train_step(method, batch, opt) -> Callable[[], None]:
    def step() -> None:
        method.training_step(batch, 0)["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tok = WordTokenizer()
    bank = build_prompt_bank()
    y = torch.arange(args.batch) % 10
    ids, mask = tok.batch([bank.train[int(d)][0] for d in y], 8)
    x = torch.randn(args.batch, 1, 14, 14)
    rows = []

    lm = tiny_lm(vocab_size=len(tok)).eval().requires_grad_(False)

    def lm_forward() -> None:
        with torch.no_grad():
            lm(input_ids=ids, attention_mask=mask)

    rows.append(_bench("Qwen2 LM forward (frozen)", lm_forward, [], args.steps, args.warmup))

    dit = ClassConditionalWan(tiny_dit(), 10, context_len=TINY_CONTEXT_LEN)
    alone = WanFlow(dit, timestep_shift=4.0)
    opt = torch.optim.AdamW(dit.parameters(), lr=1e-4)
    rows.append(_bench("Wan DiT alone, train step", _train_step(alone, (x, y), opt),
                       list(dit.parameters()), args.steps, args.warmup))  # fmt: skip

    fused = LightFusion(lm, dit.dit, context_len=TINY_CONTEXT_LEN)
    method = LightFusionFlow(fused, null_ids=torch.tensor(tok.encode("")), timestep_shift=4.0)
    trained = [p for g in method.param_groups() for p in g["params"]]
    opt = torch.optim.AdamW(trained, lr=1e-4)
    rows.append(_bench("LightFusion (LM frozen), train step",
                       _train_step(method, (x, ids, mask), opt), trained, args.steps,
                       args.warmup))  # fmt: skip
    both = rows[0]["step_ms"] + rows[1]["step_ms"]
    print(f"batch {args.batch}, 8 text tokens, 49 latent tokens, {args.threads} thread(s), "
          f"median of {args.steps} steps; LM forward + DiT step run separately: {both:.0f} ms")  # fmt: skip
    print("| row | trained params (M) | step wall (ms) | step CPU (ms) | largest op alloc (MB) "
          "| peak RSS (MB) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['row']} | {r['params_M']:.3f} | {r['step_ms']:.0f} | {r['cpu_ms']:.0f} | "
              f"{r['op_peak_MB']:.1f} | {r['rss_peak_MB']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
