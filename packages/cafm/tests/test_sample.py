"""Sampling as SiT and the official CAFM validation sample: Euler and Heun on
``linspace(1, 0, steps + 1)``, guidance-free and with classifier-free guidance, written out by
hand here; and ``paperzoo sample`` through the real CLI."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
import torch

from paperzoo.cafm.jit import JiTGenerator
from paperzoo.cafm.model import CAFMGenerator, cafm_tiny_mnist
from paperzoo.gen.sample import ClassConditionalSampler

SMALL = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2, num_heads=4,
             num_classes=10)  # fmt: skip


def _model() -> CAFMGenerator:
    torch.manual_seed(0)
    g = CAFMGenerator(**SMALL)
    with torch.no_grad():
        for p in g.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    return g.eval()


def _official(model, noise, labels, steps: int, sampler: str, scale: float = 1.0):
    """The official trainer's ``inference`` (Euler; Heun on (steps // 2) + 1 times), with the
    guidance written as two separate passes."""

    def v(x, t):
        cond = model.velocity(x, t, labels)
        if scale == 1.0:
            return cond
        uncond = model.velocity(x, t, torch.full_like(labels, model.null_class))
        return uncond + scale * (cond - uncond)

    n = steps if sampler == "euler" else steps // 2
    times = torch.linspace(1.0, 0.0, n + 1)
    x = noise
    for src, tgt in itertools.pairwise(times):
        s, e = src.repeat(len(noise)), tgt.repeat(len(noise))
        out1 = v(x, s)
        if sampler == "euler":
            x = x - (s - e).view(-1, 1, 1, 1) * out1
        else:
            nxt = x - (s - e).view(-1, 1, 1, 1) * out1
            out2 = v(nxt, e)
            x = x - (s - e).view(-1, 1, 1, 1) * 0.5 * (out1 + out2)
    return x


@pytest.mark.parametrize("scale", [1.0, 4.0])
@pytest.mark.parametrize(("sampler", "evaluations"), [("euler", 6), ("heun", 8)])
def test_samplers_match_the_official_loop(sampler, evaluations, scale):
    model = _model()
    noise = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 3, 9])
    intervals = evaluations if sampler == "euler" else evaluations // 2
    with torch.no_grad():
        got = model.sample(labels, noise=noise, steps=intervals, method=sampler, cfg_scale=scale)
        want = _official(model, noise, labels, evaluations, sampler, scale)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if scale != 1.0:
        plain = model.sample(labels, noise=noise, steps=intervals, method=sampler)
        assert not torch.allclose(plain, got)


def test_default_is_250_heun_evaluations_and_the_generator_seeds_the_noise():
    model = _model()
    assert (model.default_steps, model.default_method) == (125, "heun")
    calls = []
    original = model.velocity

    def counting(x, t, y):
        calls.append(len(x))
        return original(x, t, y)

    model.velocity = counting  # type: ignore[method-assign]
    labels = torch.tensor([1, 2])
    a = model.sample(labels, generator=torch.Generator().manual_seed(3))
    assert len(calls) == 250
    b = model.sample(labels, generator=torch.Generator().manual_seed(3), steps=4)
    c = model.sample(labels, generator=torch.Generator().manual_seed(3), steps=4)
    assert a.shape == (2, 4, 8, 8) and torch.equal(b, c)
    calls.clear()
    model.sample(labels, steps=2, cfg_scale=2.0)
    assert calls == [4] * 4  # guidance: one doubled batch per evaluation


def test_jit_and_tiny_models_are_class_conditional_samplers():
    jit = JiTGenerator(input_size=16, patch_size=4, hidden_size=32, depth=2, num_heads=4,
                       bottleneck_dim=8, in_context_len=2, in_context_start=1, num_classes=10)  # fmt: skip
    tiny = cafm_tiny_mnist()
    for model, shape in ((jit, (2, 3, 16, 16)), (tiny, (2, 1, 28, 28))):
        assert isinstance(model, ClassConditionalSampler) and model.output_space == "pixel"
        out = model.sample(torch.tensor([0, 9]), generator=torch.Generator().manual_seed(0),
                           steps=2, cfg_scale=1.5)  # fmt: skip
        assert out.shape == shape and torch.isfinite(out).all()
    assert jit.default_steps == 25  # the official JiT validation: 50 Heun evaluations


def test_paperzoo_sample_cli_writes_the_grid(tmp_path):
    out = tmp_path / "grid.png"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "paperzoo.core.cli", "sample", "cafm_tiny_mnist",
           "--classes", "1,7", "--per-class", "3", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(out) as image:  # 2 rows (classes) x 3 samples of 28 px, with padding
        assert image.width > image.height > 2 * 28
    bad = subprocess.run([*cmd[:-2], "--classes", "12", "--out", str(out)], capture_output=True,
                         text=True, env=env, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "out of range" in bad.stderr
