"""CPU throughput of paperzoo's hiera_base_224 against timm's, side by side in one process.

Both models hold the same weights (timm's, loaded through our converter, outputs checked equal)
and run the same batch. Rounds alternate ours / timm so that load changes on a shared machine
hit both alike; the table reports the median round of each, as images per wall-clock second
and per CPU second of this process (the steadier number when other jobs share the cores).
Rows: inference forward (``torch.inference_mode``) and one training step (forward,
cross-entropy, backward, AdamW).

    python packages/hiera/bench/bench_hiera.py            # batch 8, 224x224
    python packages/hiera/bench/bench_hiera.py --batch 16 --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import timm
import torch
import torch.nn.functional as F

from paperzoo.hiera.convert import convert_timm_state_dict
from paperzoo.hiera.model import hiera_base_224

warnings.filterwarnings("ignore", message="Importing from timm.models.layers")


def _forward(model: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        model(x)


def _train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x, y) -> None:
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def _time(fn, iters: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) per call."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters, (time.process_time() - cpu) / iters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8, help="images per step (default 8)")
    p.add_argument("--iters", type=int, default=2, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per model")
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args()

    torch.manual_seed(0)
    ref = timm.create_model("hiera_base_224")
    ours = hiera_base_224()
    ours.load_state_dict(convert_timm_state_dict(ref.state_dict()))
    x = torch.randn(args.batch, 3, 224, 224)
    y = torch.randint(0, 1000, (args.batch,))
    ref.eval(), ours.eval()
    with torch.inference_mode():  # pre-logits: timm's classifier starts at zero
        feats_ref = ref.forward_head(ref.forward_features(x[:1]), pre_logits=True)
        diff = feats_ref - ours.forward_head(ours.forward_features(x[:1]), pre_logits=True)
        diff = diff.abs().max().item()
    if diff > 1e-4:
        raise SystemExit(f"outputs differ by {diff}: the comparison would be meaningless")

    rows = []
    opts = {
        "ours": torch.optim.AdamW(ours.parameters(), lr=1e-5),
        "timm": torch.optim.AdamW(ref.parameters(), lr=1e-5),
    }
    models = {"ours": ours, "timm": ref}
    for mode in ("forward", "train step"):
        times: dict[str, list[tuple[float, float]]] = {"ours": [], "timm": []}
        for model in models.values():
            model.train(mode == "train step")
        for r in range(args.warmup + args.rounds):
            for name, model in models.items():
                if mode == "forward":
                    t = _time(lambda m=model: _forward(m, x), args.iters)
                else:
                    t = _time(lambda m=model, n=name: _train_step(m, opts[n], x, y), args.iters)
                if r >= args.warmup:
                    times[name].append(t)
        wall = {k: args.batch / statistics.median(t for t, _ in v) for k, v in times.items()}
        cpu = {k: args.batch / statistics.median(c for _, c in v) for k, v in times.items()}
        rows.append((mode, wall["ours"], wall["timm"], cpu["ours"], cpu["timm"]))

    print(
        f"hiera_base_224, batch {args.batch}, 224x224, CPU, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, timm {timm.__version__}; median of {args.rounds} rounds "
        f"x {args.iters} steps; max |ours - timm| = {diff:.1e}"
    )
    head = (
        "mode",
        "ours img/s",
        "timm img/s",
        "ratio",
        "ours img/cpu-s",
        "timm img/cpu-s",
        "ratio",
    )
    print(f"{head[0]:<12}" + "".join(f"{h:>16}" for h in head[1:]))
    for mode, a, b, c, d in rows:
        cells = (a, b, a / b, c, d, c / d)
        print(f"{mode:<12}" + "".join(f"{v:>16.2f}" for v in cells))


if __name__ == "__main__":
    main()
