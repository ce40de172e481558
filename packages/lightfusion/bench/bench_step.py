"""CPU step time and peak memory of LightFusion training at the tiny size, against the two base
models run separately: the frozen Qwen2 LM's forward on the prompts (what the fused model
spends on the understanding tower), a Wan DiT rectified-flow step with its class-embedding
context (the DiT alone), and the fused step (LM frozen, DiT + fusion layers + context trained).

Each row: the median wall-clock and process-CPU time of one step (forward, loss, backward,
AdamW where something trains) over ``--steps`` steps after ``--warmup``, the trained
parameters and the memory of one step, as :func:`paperzoo.train.bench.measure_step` defines
them (rows run in order of increasing size). Timings are noisy on a shared machine; they never
go into pass/fail tests.

    python packages/lightfusion/bench/bench_step.py               # batch 64, 1 thread
    python packages/lightfusion/bench/bench_step.py --batch 16 --threads 2
"""

from __future__ import annotations

import argparse

import torch

from paperzoo.lightfusion.data import WordTokenizer, build_prompt_bank
from paperzoo.lightfusion.method import ClassConditionalWan, LightFusionFlow, WanFlow
from paperzoo.lightfusion.model import TINY_CONTEXT_LEN, LightFusion, tiny_dit, tiny_lm
from paperzoo.train.bench import Step, markdown_table, measure_step, optimizer_step


def _train_step(method, batch, opt) -> Step:
    return optimizer_step(lambda: method.training_step(batch, 0)["loss"], opt)


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
    timing = {"steps": args.steps, "warmup": args.warmup}

    lm = tiny_lm(vocab_size=len(tok)).eval().requires_grad_(False)

    def lm_forward() -> None:
        with torch.no_grad():
            lm(input_ids=ids, attention_mask=mask)

    rows.append(measure_step("Qwen2 LM forward (frozen)", lm_forward, params=0, **timing))

    dit = ClassConditionalWan(tiny_dit(), 10, context_len=TINY_CONTEXT_LEN)
    alone = WanFlow(dit, timestep_shift=4.0)
    opt = torch.optim.AdamW(dit.parameters(), lr=1e-4)
    n_dit = sum(p.numel() for p in dit.parameters())
    rows.append(measure_step("Wan DiT alone, train step", _train_step(alone, (x, y), opt),
                             params=n_dit, **timing))  # fmt: skip

    fused = LightFusion(lm, dit.dit, context_len=TINY_CONTEXT_LEN)
    method = LightFusionFlow(fused, null_ids=torch.tensor(tok.encode("")), timestep_shift=4.0)
    trained = [p for g in method.param_groups() for p in g["params"]]
    opt = torch.optim.AdamW(trained, lr=1e-4)
    rows.append(measure_step("LightFusion (LM frozen), train step",
                             _train_step(method, (x, ids, mask), opt),
                             params=sum(p.numel() for p in trained), **timing))  # fmt: skip
    both = rows[0]["step_ms"] + rows[1]["step_ms"]
    print(f"batch {args.batch}, 8 text tokens, 49 latent tokens, {args.threads} thread(s), "
          f"median of {args.steps} steps; LM forward + DiT step run separately: {both:.0f} ms")  # fmt: skip
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
