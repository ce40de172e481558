"""Linear-angular (castled Castling) attention vs softmax attention as the token count grows.

One attention block each, forward only (inference, no grad), batch 1, dim 192, 3 heads (a
DeiT-T block), N = 256, 1k, 4k, 16k tokens:

- ``softmax_sdpa``: timm's ``Attention`` (qkv, torch SDPA, proj): the softmax twins' block;
- ``softmax_math``: the same block with timm's explicit path (``fused_attn=False``: the N x N
  weights are materialised, as in the official code and in Castling's training-only branch);
- ``castling``: ``CastlingAttention`` castled (qkv, linear-angular attention, DWConv, proj).

Time: median of ``--repeats`` runs after a warm-up. Peak memory on CPU: each (block, N) runs in
a fresh child process and reports its peak resident set (``ru_maxrss``) minus that of a child
that builds the same inputs and block and runs it once on 16 tokens only (so library code that
loads on first use is in both), so the number is what the forward pass at N itself adds
(tensors and allocator slack; coarse, to a few MiB, at small N). On CUDA
(when available): ``torch.cuda.max_memory_allocated`` above the inputs, and CUDA-event timing.
Timings are for reading, never for pass/fail: the development machines are shared and noisy.

    python packages/castlingvit/bench/bench_castling_attention.py            # CPU (+ GPU if any)
    python packages/castlingvit/bench/bench_castling_attention.py --tokens 256 1024 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

KINDS = ("softmax_sdpa", "softmax_math", "castling")


def _block(kind: str, dim: int, heads: int):
    from timm.layers import Attention

    from paperzoo.castlingvit.model import CastlingAttention

    if kind == "castling":
        block = CastlingAttention(dim, num_heads=heads, qkv_bias=True, sparse_reg=False)
    else:
        block = Attention(dim, num_heads=heads, qkv_bias=True)
        block.fused_attn = kind == "softmax_sdpa"
    return block.eval()


def _child(kind: str, n: int, dim: int, heads: int, repeats: int, run: bool) -> dict:
    import torch

    torch.manual_seed(0)
    block = _block(kind, dim, heads)
    x = torch.randn(1, n, dim)
    with torch.no_grad():  # load every kernel's code once, at a tiny size, in both children
        block(torch.randn(1, 16, dim))
    times = []
    if run:
        with torch.no_grad():
            block(x)  # warm-up
            for _ in range(repeats):
                start = time.perf_counter()
                block(x)
                times.append(time.perf_counter() - start)
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"ms": 1e3 * statistics.median(times) if times else 0.0, "rss_mib": rss_kib / 1024}


def _run_child(kind: str, n: int, args: argparse.Namespace, run: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(n), str(args.dim), str(args.heads),
           str(args.repeats), "1" if run else "0"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cpu(args: argparse.Namespace) -> None:
    import torch

    print(f"CPU, {torch.get_num_threads()} threads, dim {args.dim}, {args.heads} heads, batch 1")
    print(f"{'N':>6} | " + " | ".join(f"{k:>22}" for k in KINDS) + " | sdpa/castling")
    for n in args.tokens:
        cells, ms = [], {}
        for kind in KINDS:
            if kind == "softmax_math" and n > args.max_math_tokens:
                cells.append(f"{'skipped':>22}")
                continue
            base = _run_child(kind, n, args, run=False)["rss_mib"]
            res = _run_child(kind, n, args, run=True)
            ms[kind] = res["ms"]
            cells.append(f"{res['ms']:9.2f} ms {res['rss_mib'] - base:7.1f} MiB")
        ratio = ms["softmax_sdpa"] / ms["castling"]
        print(f"{n:>6} | " + " | ".join(cells) + f" | {ratio:.2f}x")


def _gpu(args: argparse.Namespace) -> None:
    import torch

    if not torch.cuda.is_available():
        print("GPU: no CUDA device, skipped")
        return
    print(f"GPU {torch.cuda.get_device_name()}, fp32 and bf16, dim {args.dim}, {args.heads} heads")
    for dtype in (torch.float32, torch.bfloat16):
        for n in [*args.tokens, 65536]:
            row = []
            for kind in ("softmax_sdpa", "castling"):
                block = _block(kind, args.dim, args.heads).cuda().to(dtype)
                x = torch.randn(1, n, args.dim, device="cuda", dtype=dtype)
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                with torch.no_grad():
                    block(x)
                    start, end = torch.cuda.Event(True), torch.cuda.Event(True)
                    start.record()
                    for _ in range(args.repeats):
                        block(x)
                    end.record()
                torch.cuda.synchronize()
                ms = start.elapsed_time(end) / args.repeats
                peak = (torch.cuda.max_memory_allocated() - base) / 2**20
                row.append(f"{kind} {ms:8.3f} ms {peak:8.1f} MiB")
            print(f"  {dtype!s:>14} N={n:>6}: " + " | ".join(row))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, n, dim, heads, repeats, run = sys.argv[2:8]
        print(json.dumps(_child(kind, int(n), int(dim), int(heads), int(repeats), run == "1")))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-math-tokens", type=int, default=16384,
                        help="skip the explicit N x N softmax above this (memory)")  # fmt: skip
    args = parser.parse_args()
    _cpu(args)
    _gpu(args)


if __name__ == "__main__":
    main()
