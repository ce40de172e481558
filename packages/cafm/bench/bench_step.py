"""CPU step time and peak memory of CAFM post-training at the tiny size (the study's 4 x 64 DiT
on 28 px digits): the generator step and the discriminator step of the method, the bare JVP
discriminator step against a plain discriminator step, and a flow-matching step for reference.

Rows (batch B, every step = forward, loss, backward, AdamW):
- ``flow matching``: the base model's training step (G only).
- ``plain D step``: D(x_t, t, y) on B real and B fake inputs in one batch, least-squares loss,
  backward: what a discriminator step costs without the JVP.
- ``JVP D step``: ``jvp(D, (x_t, t), (tangent, 1))`` for the 2 tangents (real and fake, one
  ``vmap``) plus the primal, CAFM's D loss, backward (reverse over forward): the same D work as
  the plain step with the JVP added. The ratio to the plain step is printed.
- ``CAFM D step`` / ``CAFM G step``: ``CAFM.training_step`` as the Trainer runs it (the D step
  includes G's velocity under no_grad; the G step runs G and the JVP of the frozen D, and
  backpropagates into G through the tangent).

Each row: the median wall-clock and process-CPU time of one step over ``--steps`` steps after
``--warmup``, and its memory, as :func:`paperzoo.train.bench.measure_step` defines them. Timings
are noisy on a shared machine; they never go into tests.

    python packages/cafm/bench/bench_step.py                 # batch 64, 1 thread
    python packages/cafm/bench/bench_step.py --batch 16 --steps 5
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from paperzoo.cafm.convert import init_discriminator
from paperzoo.cafm.method import CAFM, discriminator_jvp, discriminator_loss, interpolate
from paperzoo.cafm.model import cafm_tiny_mnist, discriminator_like
from paperzoo.gen.flow import FlowMatching
from paperzoo.train.bench import markdown_table, measure_step, optimizer_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b = args.batch
    generator = cafm_tiny_mnist()
    with torch.no_grad():  # away from the zero init, as a trained base is
        for p in generator.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.02)
    discriminator = init_discriminator(discriminator_like(generator), generator)
    g_params = [p for p in generator.parameters() if p.requires_grad]
    d_params = [p for p in discriminator.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(b, 1, 28, 28, generator=gen) * 2 - 1
    y = torch.randint(0, 10, (b,), generator=gen)
    noise = torch.randn(x.shape, generator=gen)
    t = torch.rand(b, generator=gen)
    x_t = interpolate(x, noise, t)
    with torch.no_grad():
        v_fake = generator.velocity(x_t, t, y)
    fake_x_t = interpolate(x.flip(0), noise, t)  # another set of B inputs for the plain step

    def fm_loss() -> torch.Tensor:
        return FlowMatching(generator, time_scale=1.0)(x, y)["loss"]

    def plain_d_loss() -> torch.Tensor:
        out = discriminator(torch.cat([x_t, fake_x_t]), torch.cat([t, t]), torch.cat([y, y]))
        real, fake = out.chunk(2)
        return (real - 1).square().mean() + (fake + 1).square().mean()

    def jvp_d_loss() -> torch.Tensor:
        out, dout = discriminator_jvp(discriminator, x_t, t, y, torch.stack([noise - x, v_fake]))
        return discriminator_loss(out, dout[0], dout[1])["loss"]

    method = CAFM(generator, discriminator, null_class=generator.null_class)

    def cafm_d_loss() -> torch.Tensor:
        return method.training_step((x, y), 0, "discriminator")["loss"]

    def cafm_g_loss() -> torch.Tensor:
        return method.training_step((x, y), 0, "generator")["loss"]

    def row(name: str, loss_fn, params: list[nn.Parameter]) -> dict:
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.0, 0.95), weight_decay=0.0)
        step = optimizer_step(loss_fn, opt)
        n = sum(p.numel() for p in params)
        return measure_step(name, step, params=n, steps=args.steps, warmup=args.warmup)

    rows = [
        row("flow matching (G)", fm_loss, g_params),
        row("plain D step (2B inputs)", plain_d_loss, d_params),
        row("JVP D step (2 tangents, vmap)", jvp_d_loss, d_params),
        row("CAFM D step (training_step)", cafm_d_loss, d_params),
        row("CAFM G step (training_step)", cafm_g_loss, g_params),
    ]
    print(f"tiny size (cafm_tiny_mnist), batch {b}, {args.threads} thread(s), median of "
          f"{args.steps} steps")  # fmt: skip
    print(markdown_table(rows))
    plain, jvp = rows[1], rows[2]
    print(f"JVP D step / plain D step: {jvp['step_ms'] / plain['step_ms']:.2f}x wall, "
          f"{jvp['cpu_ms'] / plain['cpu_ms']:.2f}x CPU")  # fmt: skip


if __name__ == "__main__":
    main()
