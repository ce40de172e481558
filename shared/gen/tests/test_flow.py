"""paperzoo.gen.flow: path and target, Euler/Heun orders, SiT adapter, guidance, training."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.core import OptimConfig, RecipeSpec, RunContext, TrainerConfig
from paperzoo.gen.dit import DiT
from paperzoo.gen.flow import (
    FlowMatching,
    SiTVelocity,
    cfg_velocity,
    interpolate,
    sample_ode,
    velocity_target,
)
from paperzoo.train import Trainer

torch.set_num_threads(1)

TINY = dict(input_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4, num_classes=10)


def _random_dit(**kwargs) -> DiT:
    model = DiT(**TINY | kwargs).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name != "pos_embed":
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def test_interpolate_endpoints_and_target_is_the_time_derivative():
    g = torch.Generator().manual_seed(0)
    x, noise = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    torch.testing.assert_close(interpolate(x, noise, torch.zeros(4)), x)
    torch.testing.assert_close(interpolate(x, noise, torch.ones(4)), noise)
    t = torch.tensor([0.1, 0.3, 0.6, 0.9])
    h = 1e-3
    finite = (interpolate(x, noise, t + h) - interpolate(x, noise, t - h)) / (2 * h)
    torch.testing.assert_close(finite, velocity_target(x, noise), atol=1e-3, rtol=1e-3)


def _linear_ode_errors(method: str, steps_list):
    # dx/dt = a x, integrated t = 1 -> 0: x(0) = x(1) exp(-a).
    a = 1.5
    x1 = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    exact = x1 * math.exp(-a)
    errors = []
    for steps in steps_list:
        out = sample_ode(lambda x, t: a * x, x1, steps, method=method)
        errors.append((out - exact).abs().max().item())
    return errors


def test_euler_is_first_order_and_heun_second_order():
    steps = [8, 16, 32, 64]
    euler, heun = _linear_ode_errors("euler", steps), _linear_ode_errors("heun", steps)
    euler_order = math.log2(euler[-2] / euler[-1])
    heun_order = math.log2(heun[-2] / heun[-1])
    assert 0.9 < euler_order < 1.1 and 1.9 < heun_order < 2.1
    # Same steps: Heun's error is an order of magnitude below Euler's, two orders at 64 steps.
    assert all(h < e / 10 for h, e in zip(heun, euler)) and heun[-1] < euler[-1] / 100


def test_heun_step_by_hand_and_time_dependent_grid():
    # v = t: exact x(0) = x(1) - 1/2; Heun is exact for a velocity linear in t.
    x1 = torch.zeros(2, 1, dtype=torch.float64)
    v = lambda x, t: t.view(-1, 1).to(x.dtype)  # noqa: E731
    torch.testing.assert_close(sample_ode(v, x1, 3, method="heun"), x1 - 0.5)
    # Euler on a custom grid reads v at the left end of each interval.
    out = sample_ode(v, x1, method="euler", t_grid=[1.0, 0.5, 0.0])
    torch.testing.assert_close(out, x1 - (0.5 * 1.0 + 0.5 * 0.5))
    with pytest.raises(ValueError, match="steps >= 1"):
        sample_ode(v, x1)
    with pytest.raises(ValueError, match="unknown method"):
        sample_ode(v, x1, 2, method="rk4")


def test_sit_adapter_matches_hand_conversion():
    sit = _random_dit()  # learn_sigma: 8 output channels
    g = torch.Generator().manual_seed(3)
    x, t, y = torch.randn(2, 4, 8, 8, generator=g), torch.tensor([0.2, 0.7]), torch.tensor([1, 5])
    with torch.no_grad():
        ours = SiTVelocity(sit)(x, t, y)
        # SiT: u(x_t, s) with s = 1 - t (data at s = 1), forward keeps the first 4 channels.
        by_hand = -sit(x, torch.tensor([0.8, 0.3]), y)[:, :4]
    assert ours.shape == (2, 4, 8, 8)
    torch.testing.assert_close(ours, by_hand)


def test_sit_adapter_recovers_an_exact_sit_flow():
    # For data concentrated at m, SiT's exact velocity is u(x, s) = (m - x) / (1 - s); its
    # conversion must be ours: v(x_t, t) = (x_t - m) / t. Checked on the converted function.
    m = torch.tensor(2.0)

    def sit_u(x, s, y):
        return (m - x) / (1 - s.view(-1, 1))

    class Wrapped(torch.nn.Module):
        in_channels = 1

        def forward(self, x, s, y):
            return sit_u(x, s, y)

    x_t, t = torch.tensor([[0.5], [3.0]]), torch.tensor([0.25, 0.5])
    torch.testing.assert_close(SiTVelocity(Wrapped())(x_t, t, None), (x_t - m) / t.view(-1, 1))


def test_cfg_velocity_by_hand():
    model = _random_dit()
    method = FlowMatching(model)
    g = torch.Generator().manual_seed(4)
    x, t, y = torch.randn(2, 4, 8, 8, generator=g), torch.tensor([0.3, 0.9]), torch.tensor([2, 3])
    with torch.no_grad():
        guided = cfg_velocity(method.velocity, y, 3.0, null_class=10)(x, t)
        cond = method.velocity(x, t, y)
        uncond = method.velocity(x, t, torch.full_like(y, 10))
        torch.testing.assert_close(guided, uncond + 3.0 * (cond - uncond))
        torch.testing.assert_close(cfg_velocity(method.velocity, y, 1.0, 10)(x, t), cond)


def test_logit_normal_times():
    method = FlowMatching(DiT(**TINY), time_sampling="logit_normal", logit_normal_mean=0.8,
                          logit_normal_std=0.8)  # fmt: skip
    torch.manual_seed(0)
    t = method.sample_t(20000, torch.device("cpu"))
    assert t.min() > 0 and t.max() < 1
    assert abs(torch.logit(t).mean().item() - 0.8) < 0.03
    assert abs(torch.logit(t).std().item() - 0.8) < 0.03


# Class-conditional Gaussian latents: class k has mean MEANS[k] in every pixel, std STD.
MEANS = (-1.0, 1.0)
STD = 0.5


def _gaussian_data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.tensor(MEANS)[y].view(-1, 1, 1, 1) + STD * torch.randn(n, 4, 8, 8, generator=g)
    return list(zip(x, y))


def _eval_loss(method: FlowMatching, data, seed: int = 7) -> float:
    torch.manual_seed(seed)
    x = torch.stack([d[0] for d in data])
    y = torch.stack([d[1] for d in data])
    method.eval()
    with torch.no_grad():
        return method(x, y)["loss"].item()


def test_flow_matching_trains_with_the_trainer_and_samples_the_target(tmp_path):
    torch.manual_seed(0)
    model = DiT(**TINY | dict(num_classes=2, depth=2, hidden_size=64), learn_sigma=False)
    method = FlowMatching(model, time_scale=1000.0)
    data = _gaussian_data(512, seed=1)
    held_out = _gaussian_data(256, seed=2)
    before = _eval_loss(method, held_out)
    recipe = RecipeSpec(name="gen_flow_test", config="paperzoo.gen.flow:FlowMatching",
                        runner="paperzoo.gen.flow:FlowMatching")  # fmt: skip
    trainer_cfg = TrainerConfig(max_steps=300, checkpoint_every=300, log_every=50,
                                progress=False, tensorboard=False, device="cpu")  # fmt: skip
    optim_cfg = OptimConfig(name="adamw", lr=2e-3, weight_decay=0.0, warmup_steps=20,
                            betas=(0.9, 0.99))  # fmt: skip
    method.train()
    state = Trainer(method, data, RunContext(out_dir=tmp_path, recipe=recipe, progress=False),
                    trainer_cfg, optim_cfg, batch_size=64).fit()  # fmt: skip
    assert state.step == 300 and (tmp_path / "checkpoints").exists()
    after = _eval_loss(method, held_out)
    # The loss floor at the exact velocity is E Var(noise - x | x_t) > 0; the untrained model
    # predicts 0, i.e. E|noise - x|^2 = 1 + STD^2 + E m^2 = 2.25.
    assert before > 2.0 and after < 0.6 * before, (before, after)
    g = torch.Generator().manual_seed(5)
    for k, mean in enumerate(MEANS):
        y = torch.full((128,), k)
        samples = method.sample(y, steps=20, method="heun", generator=g)
        assert samples.shape == (128, 4, 8, 8)
        assert abs(samples.mean().item() - mean) < 0.15, (k, samples.mean().item())
        assert abs(samples.std().item() - STD) < 0.15, (k, samples.std().item())
