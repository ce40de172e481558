"""Training-step time and peak memory: SuperClass vs open_clip CLIP, same image tower and batch.

SuperClass replaces CLIP's text tower and contrastive loss with one Linear(width -> 49,408)
over the caption's tokens, so a step should cost less. Each model is timed in its own fresh
process (one process, no torchrun; a fresh one so that the peak resident memory belongs to
that model alone), the two arms alternating over ``--rounds`` so that a busy machine slows
both alike, on random images and real tokenized captions, with AdamW as the recipes use it.
Reported: the median seconds per optimizer step after warm-up over all rounds, and the peak
memory above the process's memory before the model was built (CPU: peak RSS; CUDA: max
allocated), the smallest over the rounds.

    python packages/superclass/bench/bench_superclass.py                  # ViT-B/16, batch 4
    python packages/superclass/bench/bench_superclass.py --size tiny --batch 64
    python packages/superclass/bench/bench_superclass.py --device cuda --batch 256 --amp
    python packages/superclass/bench/bench_superclass.py --threads 1   # a shared machine
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SIZES = {
    "b16": ("superclass_vit_b16", "superclass_clip_vit_b16", 224, 77),
    "tiny": ("superclass_vit_tiny_mnist", "superclass_clip_tiny_mnist", 28, 32),
}


def _rss_mib() -> float:
    # ru_maxrss is KiB on Linux: the peak so far of this process.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(
    arm: str, size: str, batch: int, steps: int, warmup: int, device: str, amp: bool, threads: int
) -> dict:
    """One arm in this process: seconds per step and peak memory (MiB) above the baseline."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)

    from paperzoo.core import create_model
    from paperzoo.superclass.data import tokenizer
    from paperzoo.superclass.method import ClipMethod, SuperClassMethod

    sc_name, clip_name, image_size, context = SIZES[size]
    dev = torch.device(device)
    torch.manual_seed(0)
    captions = [f"a photo of {i} small red things on a wooden table, seen from above"
                for i in range(batch)]  # fmt: skip
    tokens = tokenizer(context)(captions).to(dev)
    images = torch.randn(batch, 3, image_size, image_size, device=dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _current_rss_mib()
    if arm == "superclass":
        method = SuperClassMethod(create_model(sc_name))
    else:
        method = ClipMethod(create_model(clip_name))
    method.to(dev)
    params = [p for p in method.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
    times = []
    for step in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = method.training_step((images, tokens), step)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    if dev.type == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = _rss_mib() - base
    return {
        "arm": arm,
        "params": sum(p.numel() for p in params),
        "step_s": times,
        "peak_mib": peak,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="b16")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast, as the paper recipe")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--arm", choices=["superclass", "clip"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:  # a child: measure one arm, print JSON
        print(json.dumps(measure(args.arm, args.size, args.batch, args.steps, args.warmup,
                                 args.device, args.amp, args.threads)))  # fmt: skip
        return
    runs: dict[str, list[dict]] = {"superclass": [], "clip": []}
    for _ in range(args.rounds):
        for arm in runs:
            cmd = [sys.executable, __file__, "--arm", arm, *sys.argv[1:]]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[arm].append(json.loads(out.stdout.strip().splitlines()[-1]))
    results = {
        arm: {
            **rs[0],
            "step_s": statistics.median(t for r in rs for t in r["step_s"]),
            "peak_mib": min(r["peak_mib"] for r in rs),
        }
        for arm, rs in runs.items()
    }
    sc, clip = results["superclass"], results["clip"]
    print(f"SuperClass vs CLIP training step ({args.size}, batch {args.batch}, {args.device}"
          f"{', bf16' if args.amp else ''}, {sc['threads']} threads, median of "
          f"{args.rounds} x {args.steps} steps)")  # fmt: skip
    print(f"{'':<12}{'trainable params':>18}{'s / step':>12}{'peak MiB':>12}")
    for name, r in (("SuperClass", sc), ("CLIP", clip)):
        print(f"{name:<12}{r['params']:>18,}{r['step_s']:>12.3f}{r['peak_mib']:>12.0f}")
    print(f"{'CLIP / SuperClass':<30}{clip['step_s'] / sc['step_s']:>12.2f}x"
          f"{clip['peak_mib'] / max(sc['peak_mib'], 1e-9):>11.2f}x")  # fmt: skip
    print(
        f"SuperClass saves {100 * (1 - sc['step_s'] / clip['step_s']):.1f}% of the step time "
        f"and {100 * (1 - sc['peak_mib'] / clip['peak_mib']):.1f}% of the peak memory"
    )


if __name__ == "__main__":
    main()
