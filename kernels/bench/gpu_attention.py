"""GPU check of the Triton flash attention: correctness first, then speed vs SDPA-flash/xformers.

1. Correctness (bf16, odd lengths, causal, boolean and additive masks): outputs and gradients of
   every backend against a float64 reference. The Triton kernel must stay within 2x SDPA's own
   bf16 error plus one bf16 ulp at 1.0; the script stops before timing if it does not.
2. Timing, bf16, non-causal, N in {1024, 4096, 16384}, D in {64, 128}, B·N = 16384 tokens and
   H·D = 2048 (the FlashAttention papers' setting): forward and forward+backward of Triton (ours),
   torch SDPA restricted to its flash kernel, and xformers when installed. CUDA events, median of
   many runs after warm-up (the Triton warm-up includes its autotuning). FLOPs: forward
   4·B·H·N²·D, forward+backward 3.5x that.

    python kernels/bench/gpu_attention.py            # a few minutes on one GPU
    python kernels/bench/gpu_attention.py --smoke    # CPU, Triton interpreter, tiny shapes:
                                                     # checks the script itself, times nothing real
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from paperzoo.kernels import reference_attention
from paperzoo.kernels.backends import probe_xformers

DTYPE = torch.bfloat16
# Full run on CUDA; --smoke swaps in CPU and tiny sizes (see main).
SETTINGS = {
    "device": "cuda",
    "cases": [
        (1000, 1000, 64, False, None),
        (1000, 1000, 128, True, None),
        (777, 1029, 64, False, "bool"),
        (1000, 1000, 128, False, "additive"),
        (4096, 4096, 128, True, None),
    ],
    "lengths": (1024, 4096, 16384),
    "tokens": 16384,
    "width": 2048,
    "reps": (30, 15),
}


def _sdpa_flash(q, k, v, attn_mask=None, is_causal=False):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)


def _sdpa_any(q, k, v, attn_mask=None, is_causal=False):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)


def _triton(q, k, v, attn_mask=None, is_causal=False):
    from paperzoo.kernels.triton_flash import flash_attention  # after TRITON_INTERPRET is set

    return flash_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)


def _backends(for_masks: bool) -> dict:
    # SDPA's flash kernel takes no mask; for masked cases the reference SDPA is its default pick.
    fns = {"triton": _triton, "sdpa": _sdpa_any if for_masks else _sdpa_flash}
    ok, _ = probe_xformers()
    if ok:
        from paperzoo.kernels.backends import XformersBackend

        xf = XformersBackend()
        fns["xformers"] = lambda q, k, v, attn_mask=None, is_causal=False: xf(
            q, k, v, attn_mask=attn_mask, is_causal=is_causal
        )
    return fns


def check_correctness() -> bool:
    print("correctness (bf16 vs float64; max abs error of out / dq / dk / dv)", flush=True)
    dev = SETTINGS["device"]
    all_ok = True
    for n_q, n_k, d, causal, mask_kind in SETTINGS["cases"]:
        g = torch.Generator(device=dev).manual_seed(n_q + d)
        b, h = 2, 4
        q, k, v = (
            torch.randn(b, h, n, d, generator=g, device=dev, dtype=DTYPE) for n in (n_q, n_k, n_k)
        )
        mask = None
        if mask_kind == "bool":
            mask = torch.rand(b, 1, n_q, n_k, generator=g, device=dev) > 0.3
            rows = torch.arange(n_q, device=dev)
            mask[..., rows, rows % n_k] = True
        elif mask_kind == "additive":
            mask = torch.randn(1, h, n_q, n_k, generator=g, device=dev, dtype=DTYPE)
        do = torch.randn(b, h, n_q, d, generator=g, device=dev, dtype=DTYPE)
        leaves = [t.double().requires_grad_() for t in (q, k, v)]
        ref = reference_attention(*leaves, attn_mask=mask, is_causal=causal)
        ref_grads = torch.autograd.grad(ref, leaves, do.double())
        errs = {}
        for name, fn in _backends(for_masks=mask is not None or causal).items():
            inputs = [t.clone().requires_grad_() for t in (q, k, v)]
            try:
                out = fn(*inputs, attn_mask=mask, is_causal=causal)
                grads = torch.autograd.grad(out, inputs, do)
            except Exception as exc:  # e.g. a backend without this mask kind
                print(f"  {name:<9} n/a: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
                continue
            errs[name] = [
                (a.double() - b_).abs().max().item()
                for a, b_ in zip((out, *grads), (ref, *ref_grads))
            ]
        label = f"N={n_q}x{n_k} D={d} causal={causal} mask={mask_kind}"
        for name, e in errs.items():
            print(f"  {label:<45} {name:<9} " + " / ".join(f"{x:.2e}" for x in e))
        if "triton" in errs and "sdpa" in errs:
            # one bf16 ulp at 1.0 on top: SDPA on CPU keeps P in fp32, the flash kernels round it
            bound = [2 * s + 8e-3 for s in errs["sdpa"]]
            ok = all(t <= lim for t, lim in zip(errs["triton"], bound))
            all_ok &= ok
            print(f"  {label:<45} triton within 2x sdpa error: {'PASS' if ok else 'FAIL'}")
    return all_ok


def _median_ms(fn, reps: int) -> float:
    for _ in range(3):
        fn()
    cuda = SETTINGS["device"] == "cuda"
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        if not cuda:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
            continue
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def time_backends() -> None:
    print("\ntiming (bf16, non-causal; ms and TFLOP/s, ratio = ms / sdpa-flash ms)", flush=True)
    header = (
        f"{'N':>6} {'D':>4} {'B':>3} {'H':>3} {'pass':<8} {'backend':<10} {'ms':>9} "
        f"{'TFLOP/s':>8} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    fns = _backends(for_masks=False)
    dev = SETTINGS["device"]
    for d in (64, 128):
        h = SETTINGS["width"] // d
        for n in SETTINGS["lengths"]:
            b = max(1, SETTINGS["tokens"] // n)
            g = torch.Generator(device=dev).manual_seed(0)
            q, k, v = (
                torch.randn(b, h, n, d, generator=g, device=dev, dtype=DTYPE).requires_grad_()
                for _ in range(3)
            )
            do = torch.randn(b, h, n, d, generator=g, device=dev, dtype=DTYPE)
            flops = 4 * b * h * n * n * d
            for pass_name, mult in (("fwd", 1.0), ("fwd+bwd", 3.5)):
                ms = {}
                for name, fn in fns.items():
                    if pass_name == "fwd":

                        def run(fn=fn, q=q, k=k, v=v):
                            with torch.no_grad():
                                fn(q, k, v)
                    else:

                        def run(fn=fn, q=q, k=k, v=v, do=do):
                            torch.autograd.grad(fn(q, k, v), (q, k, v), do)

                    ms[name] = _median_ms(run, reps=SETTINGS["reps"][pass_name != "fwd"])
                for name, t in ms.items():
                    shown = "sdpa-flash" if name == "sdpa" else name
                    print(
                        f"{n:>6} {d:>4} {b:>3} {h:>3} {pass_name:<8} {shown:<10} {t:>9.3f} "
                        f"{flops * mult / t / 1e9:>8.1f} {t / ms['sdpa']:>6.2f}",
                        flush=True,
                    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU interpreter, tiny shapes")
    args = parser.parse_args()
    if args.smoke:
        os.environ.setdefault("TRITON_INTERPRET", "1")
        SETTINGS.update(
            device="cpu",
            cases=[
                (37, 37, 64, False, None),
                (21, 45, 32, False, "bool"),
                (40, 40, 32, True, None),
            ],
            lengths=(32, 64),
            tokens=64,
            width=128,
            reps=(2, 2),
        )
        print(f"smoke run on CPU, torch {torch.__version__}", flush=True)
    elif not torch.cuda.is_available():
        print("gpu_attention.py needs a CUDA device; none is visible here (try --smoke).")
        return 2
    else:
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}", flush=True)
    import triton

    print(f"triton {triton.__version__}; xformers: {probe_xformers()[1]}", flush=True)
    if not check_correctness():
        print("Triton kernel failed the correctness check; not timing it.")
        return 1
    time_backends()
    return 0


if __name__ == "__main__":
    sys.exit(main())
