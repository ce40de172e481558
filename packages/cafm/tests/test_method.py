"""The CAFM objective: the discriminator's JVP, the least-squares losses, the initialisation of D
from the generator, the SiT / JiT time conventions, and the step plan through the shared Trainer."""

from __future__ import annotations

import copy

import pytest
import torch

from paperzoo.cafm.convert import init_discriminator
from paperzoo.cafm.jit import JiTGenerator, jit_discriminator_like
from paperzoo.cafm.method import (
    CAFM,
    discriminator_jvp,
    discriminator_loss,
    generator_loss,
    interpolate,
    sample_timesteps,
)
from paperzoo.cafm.model import (
    CAFMDiscriminator,
    CAFMGenerator,
    cafm_tiny_mnist,
    discriminator_like,
)
from paperzoo.core import OptimConfig, TrainerConfig, get_recipe
from paperzoo.core.run import RunContext
from paperzoo.gen.dit import DiT, DiTDiscriminator
from paperzoo.gen.flow import SiTVelocity
from paperzoo.train import Trainer
from paperzoo.train.gan import GanStepPlan

SMALL = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2, num_heads=4,
             num_classes=10)  # fmt: skip
JIT_SMALL = dict(input_size=16, patch_size=4, hidden_size=32, depth=3, num_heads=4,
                 bottleneck_dim=8, in_context_len=4, in_context_start=1, num_classes=10)  # fmt: skip


def _jitter(module: torch.nn.Module, scale: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Perturb every trainable weight, so the zero-initialised adaLN / heads do not hide bugs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * scale)
    return module


def _pair(seed: int = 0) -> tuple[CAFMGenerator, CAFMDiscriminator]:
    torch.manual_seed(seed)
    g = _jitter(CAFMGenerator(**SMALL), seed=seed)
    d = _jitter(init_discriminator(discriminator_like(g), g), seed=seed + 1)
    return g, d


def test_jvp_is_the_directional_derivative_along_the_trajectory():
    _, d = _pair()
    d = d.double()
    x = torch.randn(3, 4, 8, 8, dtype=torch.float64)
    t = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    y = torch.tensor([1, 2, 10])  # 10: the null class
    v = torch.randn_like(x)
    out, dout = discriminator_jvp(d, x, t, y, v)
    torch.testing.assert_close(out, d(x, t, y))
    # central differences along (v, dt = 1); the time embedding runs in float32, so eps is 1e-3
    eps = 1e-3
    fd = (d(x + eps * v, t + eps, y) - d(x - eps * v, t - eps, y)) / (2 * eps)
    torch.testing.assert_close(dout, fd, rtol=1e-3, atol=1e-4)
    # dt = 1 matters: the derivative along x alone differs
    fd_x = (d(x + eps * v, t, y) - d(x - eps * v, t, y)) / (2 * eps)
    assert (fd - fd_x).abs().max() > 1e-3


def test_several_tangents_in_one_vmap_equal_one_jvp_each():
    _, d = _pair()
    x, t, y = torch.randn(2, 4, 8, 8), torch.rand(2), torch.tensor([3, 4])
    tangents = torch.randn(2, 2, 4, 8, 8)
    out, dout = discriminator_jvp(d, x, t, y, tangents)
    assert out.shape == (2,) and dout.shape == (2, 2)
    for k in range(2):
        _, single = discriminator_jvp(d, x, t, y, tangents[k])
        torch.testing.assert_close(dout[k], single, rtol=1e-5, atol=1e-6)


def test_parameter_gradients_through_the_jvp_equal_double_backward():
    """Reverse over forward (the D loss' gradient w.r.t. D's weights through jvp under vmap)
    equals the same derivative built with double backward."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    _, d = _pair()
    d = d.double()
    params = [p for p in d.parameters() if p.requires_grad]
    x, t = torch.randn(3, 4, 8, 8, dtype=torch.float64), torch.rand(3, dtype=torch.float64)
    y = torch.tensor([1, 2, 10])
    tangents = torch.randn(2, 3, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(2, 3, dtype=torch.float64)
    out, dout = discriminator_jvp(d, x, t, y, tangents)
    got = torch.autograd.grad((w * dout).sum() + out.square().sum(), params)
    with sdpa_kernel(SDPBackend.MATH):  # the fused CPU kernel has no double backward
        xx, tt = x.clone().requires_grad_(), t.clone().requires_grad_()
        o = d(xx, tt, y)
        gx, gt = torch.autograd.grad(o.sum(), [xx, tt], create_graph=True)
        dd = torch.stack([(gx * tangents[k]).flatten(1).sum(1) + gt for k in range(2)])
        want = torch.autograd.grad((w * dd).sum() + o.square().sum(), params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_losses_by_hand():
    out = torch.tensor([0.5, -1.0])
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([1.0, -3.0])
    d = discriminator_loss(out, real, fake, cp_scale=0.001)
    # (D'_real - 1)^2 = [1, 1] -> 1; (D'_fake + 1)^2 = [4, 4] -> 4; D^2 = [0.25, 1] -> 0.625
    assert d["adv_real"].item() == pytest.approx(1.0)
    assert d["adv_fake"].item() == pytest.approx(4.0)
    assert d["cp"].item() == pytest.approx(0.000625)
    assert d["loss"].item() == pytest.approx(5.000625)
    v = torch.full((2, 1, 2, 2), 2.0)
    g = generator_loss(fake, v, ot_scale=0.5)
    # (D'_fake - 1)^2 = [0, 16] -> 8; ot: mean(v^2) = 4 -> 0.5 * 4
    assert g["adv"].item() == pytest.approx(8.0) and g["loss"].item() == pytest.approx(10.0)
    assert generator_loss(fake, v)["loss"].item() == pytest.approx(8.0)  # ot = 0, the paper's


def test_the_method_losses_are_the_formulas_on_its_own_draws():
    g, d = _pair()
    method = CAFM(g, d, null_class=10, label_dropout=0.0)
    x, y = torch.randn(4, 4, 8, 8), torch.randint(0, 10, (4,))
    for name in ("discriminator", "generator"):
        torch.manual_seed(7)
        got = method.training_step((x, y), 0, name)
        torch.manual_seed(7)
        _, _, noise, t = method.prepare((x, y))
        x_t = interpolate(x, noise, t)
        v = g.velocity(x_t, t, y)
        _, d_real = discriminator_jvp(d, x_t, t, y, noise - x)
        out, d_fake = discriminator_jvp(d, x_t, t, y, v)
        if name == "discriminator":
            want = (d_real - 1).square().mean() + (d_fake + 1).square().mean()
            want = want + 0.001 * out.square().mean()
        else:
            want = (d_fake - 1).square().mean()
        torch.testing.assert_close(got["loss"], want, rtol=1e-5, atol=1e-6)


def test_each_step_sends_gradients_to_its_network_only():
    g, d = _pair()
    method = CAFM(g, d, null_class=10)
    batch = (torch.randn(4, 4, 8, 8), torch.randint(0, 10, (4,)))
    method.training_step(batch, 0, "discriminator")["loss"].backward()
    assert all(p.grad is None for p in g.parameters())
    assert sum(float(p.grad.abs().sum()) for p in d.parameters() if p.grad is not None) > 0
    method.zero_grad(set_to_none=True)
    method.training_step(batch, 1, "generator")["loss"].backward()
    assert all(p.grad is None for p in d.parameters())  # D frozen: the gradient reaches G only
    assert all(p.requires_grad for p in d.parameters() if p is not d.pos_embed)  # restored
    assert sum(float(p.grad.abs().sum()) for p in g.parameters() if p.grad is not None) > 0


def test_label_dropout_and_timesteps():
    g, d = _pair()
    method = CAFM(g, d, null_class=10, label_dropout=0.1)
    torch.manual_seed(0)
    _, y, _, t = method.prepare(
        (torch.zeros(20_000, 1, 1, 1), torch.zeros(20_000, dtype=torch.long))
    )
    assert set(y.unique().tolist()) == {0, 10}
    assert (y == 10).float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert t.min() >= 0 and t.max() <= 1 and t.mean().item() == pytest.approx(0.5, abs=0.01)
    # JiT's logit-normal in our direction: logit(t) ~ N(0.8, 0.8)
    logit = sample_timesteps(
        50_000, "logit_normal", generator=torch.Generator().manual_seed(0)
    ).logit()
    assert logit.mean().item() == pytest.approx(0.8, abs=0.02)
    assert logit.std().item() == pytest.approx(0.8, abs=0.02)
    with pytest.raises(ValueError, match="unknown timesteps"):
        sample_timesteps(2, "cosine")


def test_sit_convention_is_the_official_flip():
    """velocity = -SiT(x_t, 1 - t, y)[:, :C] (the official Generator; paperzoo.gen's SiTVelocity),
    and the discriminator feeds SiT's backbone 1 - t."""
    torch.manual_seed(0)
    g = _jitter(CAFMGenerator(**SMALL))  # learn_sigma: 8 output channels, 4 used
    dit = DiT(**SMALL)
    dit.load_state_dict(g.state_dict())
    dit.eval()
    x, t, y = torch.randn(3, 4, 8, 8), torch.rand(3), torch.tensor([0, 5, 10])
    torch.testing.assert_close(g.velocity(x, t, y), SiTVelocity(dit)(x, t, y))
    d = _jitter(discriminator_like(g))
    plain = DiTDiscriminator(norm="rms", **{**SMALL, "num_classes": 11, "class_dropout_prob": 0.0})
    plain.load_state_dict(d.state_dict())
    torch.testing.assert_close(d(x, t, y), plain(x, 1 - t, y))


def test_jit_velocity_from_its_x_prediction():
    torch.manual_seed(0)
    g = _jitter(JiTGenerator(**JIT_SMALL))
    x, y = torch.randn(3, 3, 16, 16), torch.tensor([1, 2, 10])
    t = torch.tensor([0.01, 0.5, 1.0])
    x_pred = g(x, 1 - t, y)  # JiT's own time: 1 = clean
    want = (x - x_pred) / t.clamp_min(0.05).view(-1, 1, 1, 1)
    torch.testing.assert_close(g.velocity(x, t, y), want)
    d = init_discriminator(jit_discriminator_like(g), g)
    assert set(d.state_dict()) - set(g.state_dict()) == {"proj_out.1.weight", "proj_out.1.bias"}
    _, dout = discriminator_jvp(d, x, t, y, torch.stack([x, -x]))
    assert dout.shape == (2, 3) and torch.isfinite(dout).all()


def test_discriminator_starts_from_the_generator():
    g, _ = _pair()
    d = init_discriminator(discriminator_like(g), g)
    gs, ds = g.state_dict(), d.state_dict()
    shared = set(gs) & set(ds)
    assert shared == {k for k in gs if not k.startswith("final_layer.")}
    for key in shared:
        assert torch.equal(gs[key], ds[key]), key
    assert set(ds) - shared == {"dis_embed", "final_layer.1.weight"}
    with pytest.raises(ValueError, match="does not fit the discriminator"):
        init_discriminator(discriminator_like(CAFMGenerator(**{**SMALL, "depth": 3})), g)


class RecordingCAFM(CAFM):
    """Records which optimizer each trainer step used and both networks' weights after it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.names: list[str] = []
        self.snapshots = [self._snapshot()]

    def _snapshot(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            "generator": copy.deepcopy(self.generator.state_dict()),
            "discriminator": copy.deepcopy(self.discriminator.state_dict()),
        }

    def training_step(self, batch, step, optimizer):
        self.names.append(optimizer)
        return super().training_step(batch, step, optimizer)

    def on_after_optimizer_step(self, step, optimizer):
        self.snapshots.append(self._snapshot())


def _moved(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_warmup_then_sixteen_d_steps_per_g_step_through_the_trainer(tmp_path):
    torch.manual_seed(0)
    g = _jitter(cafm_tiny_mnist(depth=1, hidden_size=16, num_heads=2))
    d = init_discriminator(discriminator_like(g), g)
    method = RecordingCAFM(g, d, null_class=10)
    data = torch.utils.data.TensorDataset(torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,)))
    adam = OptimConfig(name="adamw", lr=1e-3, betas=(0.0, 0.95), weight_decay=0.0,
                       schedule="constant")  # fmt: skip
    plan = GanStepPlan(d_steps_per_g=16, d_warmup_steps=3)
    cfg = TrainerConfig(max_steps=37, checkpoint_every=1000, log_every=10, amp="off",
                        progress=False, tensorboard=False, device="cpu", ema_decay=0.99)  # fmt: skip
    ctx = RunContext(out_dir=tmp_path, recipe=get_recipe("cafm_tiny"))
    trainer = Trainer(method, data, ctx, cfg, {"generator": adam, "discriminator": adam},
                      batch_size=4, step_plan=plan)  # fmt: skip
    trainer.fit()
    expected = ["discriminator"] * 3 + (["discriminator"] * 16 + ["generator"]) * 2
    assert method.names == expected
    for i, name in enumerate(expected):
        before, after = method.snapshots[i], method.snapshots[i + 1]
        other = "discriminator" if name == "generator" else "generator"
        assert _moved(before[name], after[name]), f"step {i} did not move the {name}"
        assert not _moved(before[other], after[other]), f"step {i} ({name}) moved the {other}"
    assert trainer.ema is not None and int(trainer.ema.n_averaged) == 2  # G steps only


def test_the_paper_recipes_step_as_the_official_is_dis_step():
    """cafm_paper: D for steps 0..10,000, then D where step % 17 < 16 (official
    ``is_dis_step``); the committed tiny study keeps the cycles counted after its warm-up."""
    from paperzoo.cafm.recipes import paper_config, tiny_config
    from paperzoo.cafm.reproduce import step_plan

    post = paper_config().post
    plan = step_plan(post)
    warm, n = post.d_warmup_steps, post.d_steps_per_g
    assert (warm, n, post.step_phase) == (10_000, 16, "official")
    for step in [*range(0, 200), *range(warm - 40, warm + 200)]:
        official = step <= warm or step % (1 + n) < n
        assert (plan.optimizer_at(step) == "discriminator") == official, step
    tiny = tiny_config().post
    assert step_plan(tiny).describe() == GanStepPlan(4, 100).describe()
