"""CPU step time and peak memory of MAViL pre-training at the tiny size: stage 1 (audio-video
reconstruction + inter- and intra-modal contrast), stage 2 (the same with a frozen stage-1
teacher producing the targets), and audio MAE alone for reference.

Each row: the median wall-clock and process-CPU time of one training step (forward, loss,
backward, AdamW) over ``--steps`` steps after ``--warmup``, and the peak of the process's
resident memory (``resource.getrusage`` ru_maxrss, which only grows: rows run in order of
increasing size) plus the peak of tensor allocations seen by ``torch.profiler`` for one step.
Timings are noisy on a shared machine; they never go into pass/fail tests.

    python packages/mavil/bench/bench_pretrain.py                 # batch 32, 1 thread
    python packages/mavil/bench/bench_pretrain.py --batch 8 --threads 2 --size test
"""

from __future__ import annotations

import argparse

import torch

from paperzoo.mavil.method import MAViLPretraining
from paperzoo.mavil.model import SIZES, build_pretraining_model
from paperzoo.train.bench import markdown_table, measure_step, optimizer_step


def _inputs(size: str, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    a, v = SIZES[size]["audio"], SIZES[size]["video"]
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(batch, 1, a["audio_frames"], a["mel_bins"], generator=g)
    video = torch.randn(batch, 3, v["num_frames"], v["img_size"], v["img_size"], generator=g)
    return audio, video


def _bench(name: str, method: torch.nn.Module, batch, steps: int, warmup: int) -> dict:
    params = [p for p in method.parameters() if p.requires_grad]
    step = optimizer_step(lambda: method(*batch)["loss"], torch.optim.AdamW(params, lr=1e-4))
    n = sum(p.numel() for p in params)
    return measure_step(name, step, params=n, steps=steps, warmup=warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    audio, video = _inputs(args.size, args.batch)
    rows = []
    audio_mae = MAViLPretraining(build_pretraining_model(args.size, video=False))
    rows.append(_bench("audio MAE", audio_mae, (audio, None), args.steps, args.warmup))
    stage1 = build_pretraining_model(args.size)
    method1 = MAViLPretraining(stage1, inter_weight=0.1, intra_weight=0.1)
    rows.append(_bench("MAViL stage 1", method1, (audio, video), args.steps, args.warmup))
    method2 = MAViLPretraining(build_pretraining_model(args.size, stage=2), teacher=stage1,
                               inter_weight=0.1, intra_weight=0.1)  # fmt: skip
    rows.append(_bench("MAViL stage 2", method2, (audio, video), args.steps, args.warmup))
    print(f"size {args.size}, batch {args.batch}, {args.threads} thread(s), median of "
          f"{args.steps} steps")  # fmt: skip
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
