"""The adversarial flow objective against hand computations: the relativistic paired loss, R1/R2
by finite differences on 25% of the batch, logit centering, the OT regulariser and its cosine
schedule, gradient normalisation (checked with autograd), timestep sampling, and one Trainer
run with the two optimizers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from paperzoo.advflow.method import (
    AdvFlow,
    GradientNormalization,
    cosine_schedule,
    discriminator_losses,
    generator_losses,
    sample_timesteps,
)
from paperzoo.advflow.model import build_discriminator, build_generator

SMALL = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2, num_heads=4,
             num_classes=10)  # fmt: skip


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def _randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model


def _method(kind: str = "1nfe", steps: int | None = 1, **kwargs) -> AdvFlow:
    g = _randomize(build_generator("B", kind=kind, steps=steps, **SMALL), 0)
    d = _randomize(build_discriminator("B", use_time=kind != "1nfe", **SMALL), 1)
    return AdvFlow(g, d, **kwargs)


def _batch(b: int = 8, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 4, 8, 8, generator=g), torch.randint(0, 10, (b,), generator=g)


# -- the loss terms from logits ----------------------------------------------------------------


def test_relativistic_paired_discriminator_loss_by_hand():
    real, fake = torch.tensor([1.0, 0.0, -0.5, 2.0]), torch.tensor([0.0, 2.0, 0.5, 1.0])
    real_gp, fake_gp = torch.tensor([1.01]), torch.tensor([-0.02])
    w = torch.ones(4)
    t = discriminator_losses(real, fake, real_gp, fake_gp, w, gp_scale=0.25, gp_eps=0.01,
                             centering=0.01)  # fmt: skip
    adv = (_softplus(-1.0) + _softplus(2.0) + _softplus(1.0) + _softplus(-1.0)) / 4
    assert t["adv"].item() == pytest.approx(adv, rel=1e-6)
    # paired per sample: the same logits paired differently give another loss
    shuffled = discriminator_losses(real, fake.flip(0), real_gp, fake_gp, w, gp_scale=0.25,
                                    gp_eps=0.01, centering=0.01)  # fmt: skip
    assert shuffled["adv"].item() != pytest.approx(adv, rel=1e-3)
    # R1 / R2 on the first sample only: gp * w * (D(x + eps n) - D(x))^2 / eps^2
    assert t["r1"].item() == pytest.approx(0.25 * 0.01**2 / 0.01**2, rel=1e-4)
    assert t["r2"].item() == pytest.approx(0.25 * 0.02**2 / 0.01**2, rel=1e-4)
    # logit centering: 0.01 * mean (D(real) + D(fake))^2
    cp = 0.01 * (1.0**2 + 2.0**2 + 0.0**2 + 3.0**2) / 4
    assert t["cp"].item() == pytest.approx(cp, rel=1e-6)
    # the weighting w = |t_src - t_tgt| scales the penalties
    half = discriminator_losses(real, fake, real_gp, fake_gp, torch.full((4,), 0.5),
                                gp_scale=0.25, gp_eps=0.01, centering=0.01)  # fmt: skip
    assert half["r1"].item() == pytest.approx(0.5 * t["r1"].item(), rel=1e-6)


def test_generator_loss_and_ot_regulariser_by_hand():
    real, fake = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.0])
    x_pred = torch.zeros(2, 1, 2, 2)
    x_src = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0, 0.0, 0.0, 0.0]).view(2, 1, 2, 2)
    w = torch.tensor([1.0, 0.5])
    t = generator_losses(real, fake, x_pred, x_src, w, ot_scale=0.2)
    assert t["adv"].item() == pytest.approx((_softplus(0.5) + _softplus(-1.0)) / 2, rel=1e-6)
    # (ot / w) * mean over pixels of (x_pred - x_src)^2, then the batch mean
    assert t["ot"].item() == pytest.approx((0.2 / 1.0 * 1.0 + 0.2 / 0.5 * 1.0) / 2, rel=1e-6)


def test_ot_cosine_schedule_is_the_official_one():
    steps = 1_000_000
    assert cosine_schedule(0, 0.2, 0.005, steps) == pytest.approx(0.2)
    # t = step / (steps - 1); end + (start - end) * (1 + cos(pi t)) / 2
    t = 250_000 / (steps - 1)
    expected = 0.005 + 0.195 * (1 + math.cos(math.pi * t)) / 2
    assert cosine_schedule(250_000, 0.2, 0.005, steps) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.17144, abs=1e-5)
    assert cosine_schedule((steps - 1) // 2, 0.2, 0.005, steps) == pytest.approx(0.1025, abs=1e-6)
    assert cosine_schedule(steps - 1, 0.2, 0.005, steps) == 0.005
    assert cosine_schedule(3 * steps, 0.2, 0.005, steps) == 0.005
    values = [cosine_schedule(s, 0.2, 0.005, 11) for s in range(11)]
    assert values == sorted(values, reverse=True) and values[5] == pytest.approx(0.1025)
    m = _method(ot_start=0.2, ot_end=0.005, ot_steps=11)
    assert m.ot_scale(5) == pytest.approx(0.1025)
    out = m.training_step(_batch(), 5, "generator")
    assert out["ot_scale"].item() == pytest.approx(0.1025)


def test_timestep_sampling():
    torch.manual_seed(0)
    t_src, t_tgt = sample_timesteps(1, 16, "cpu")
    assert torch.equal(t_src, torch.ones(16)) and torch.equal(t_tgt, torch.zeros(16))
    t_src, t_tgt = sample_timesteps(4, 400, "cpu")
    assert set(t_src.tolist()) == {1.0, 0.75, 0.5, 0.25}
    torch.testing.assert_close(t_src - t_tgt, torch.full((400,), 0.25))
    t_src, t_tgt = sample_timesteps(None, 400, "cpu")
    assert (t_tgt <= t_src).all() and (t_tgt >= 0).all() and (t_src <= 1).all()
    assert 0.4 < t_src.mean() < 0.6 and 0.2 < t_tgt.mean() < 0.3  # E[U * U'] = 1/4


# -- gradient normalisation ----------------------------------------------------------------------


def test_gradient_normalisation_divides_by_the_ema_of_the_squared_norm_times_numel():
    gn = GradientNormalization(decay=0.9)
    x = torch.randn(4, 3, requires_grad=True)
    g1 = torch.randn(4, 3)
    (gn(x) * g1).sum().backward()
    s1 = g1.square().sum() * 12  # the EMA starts at 0: square_avg = 0.1 * s1
    torch.testing.assert_close(x.grad, g1 / (0.1 * s1).sqrt(), rtol=1e-5, atol=1e-7)
    assert x.grad.norm().item() == pytest.approx(1 / math.sqrt(0.1 * 12), rel=1e-5)
    x.grad = None
    g2 = 100 * torch.randn(4, 3)  # a loss 100x larger
    (gn(x) * g2).sum().backward()
    avg = 0.9 * 0.1 * s1 + 0.1 * g2.square().sum() * 12
    torch.testing.assert_close(gn.square_avg, avg)
    torch.testing.assert_close(x.grad, g2 / avg.sqrt(), rtol=1e-5, atol=1e-7)
    # the forward is the identity
    torch.testing.assert_close(gn(x), x)


def _output_grad(m: AdvFlow) -> torch.Tensor:
    """The gradient that reaches the generator's output in one generator step."""
    captured = []

    def hook(module, args, out):
        out.register_hook(lambda g: captured.append(g.detach().clone()))

    handle = m.generator.register_forward_hook(hook)
    try:
        m.training_step(_batch(), 1, "generator")["loss"].backward()
    finally:
        handle.remove()
    assert len(captured) == 1
    return captured[0]


def test_the_discriminator_gradient_reaching_the_generator_has_the_normalised_norm():
    # ot 0: only the adversarial gradient reaches the output, through the normalisation
    torch.manual_seed(0)
    grad = _output_grad(_method(ot_start=0.0, ot_end=0.0))
    numel = 8 * 4 * 8 * 8
    assert grad.norm().item() == pytest.approx(1 / math.sqrt(0.1 * numel), rel=1e-4)
    # the same with a discriminator whose logits are 10x larger: the norm does not change
    m = _method(ot_start=0.0, ot_end=0.0)
    with torch.no_grad():
        m.discriminator.final_layer[1].weight.mul_(10)
    torch.manual_seed(0)
    assert _output_grad(m).norm().item() == pytest.approx(grad.norm().item(), rel=1e-4)
    # without it the gradient is the loss's own, 10x apart for the two discriminators
    plain = _method(ot_start=0.0, ot_end=0.0, grad_norm=False)
    torch.manual_seed(0)
    raw = _output_grad(plain)
    with torch.no_grad():
        plain.discriminator.final_layer[1].weight.mul_(10)
    torch.manual_seed(0)
    raw10 = _output_grad(plain)
    assert raw10.norm().item() > 3 * raw.norm().item()
    # the D gradient is not normalised in the discriminator's own step
    m.training_step(_batch(), 0, "discriminator")["loss"].backward()
    assert m.grad_norm.square_avg.item() > 0


def test_the_ot_gradient_bypasses_the_normalisation():
    m = _method(ot_start=0.2, ot_end=0.2)
    no_ot = _method(ot_start=0.0, ot_end=0.0)
    torch.manual_seed(0)
    total = _output_grad(m)
    torch.manual_seed(0)
    adv = _output_grad(no_ot)
    # replay the draws of that step: t_src = 1 gives x_src = the noise of the first randn_like
    torch.manual_seed(0)
    x, y = _batch()
    torch.randint(0, 1, (8,))  # sample_timesteps(1, ...) draws the step index
    noise = torch.randn_like(x)
    with torch.no_grad():
        fake = m.generator(noise, y)
    # d/dfake of (0.2 / w) * mean_b mean_pixels (fake - x_src)^2, w = 1
    ot_grad = 0.2 * 2 * (fake - noise) / (4 * 8 * 8) / 8
    torch.testing.assert_close(total - adv, ot_grad, rtol=1e-4, atol=1e-7)


# -- the two steps on real networks --------------------------------------------------------------


def test_discriminator_step_penalises_a_quarter_of_the_batch_by_finite_differences():
    m = _method(kind="fixed", steps=2)
    seen = []
    m.discriminator.register_forward_hook(lambda mod, args, out: seen.append((args, out)))
    torch.manual_seed(0)
    x, y = _batch(8)
    out = m.training_step((x, y), 0, "discriminator")
    (inputs, labels, times), logits = seen[0]
    assert inputs.shape[0] == 8 + 8 + 2 + 2 and torch.equal(labels[16:], y[:2].repeat(2))
    real, fake, real_gp, fake_gp = inputs.split([8, 8, 2, 2])
    # the perturbations are sigma * n with sigma = 0.01
    assert 0.007 < (real_gp - real[:2]).std().item() < 0.013
    assert 0.007 < (fake_gp - fake[:2]).std().item() < 0.013
    # the discriminator is conditioned on t_tgt, and w = |t_src - t_tgt| = 1/2
    t_tgt = times[:8]  # in [0, 1]; the network scales it by 1000
    assert set(t_tgt.tolist()) <= {0.5, 0.0}
    lr, lf, lr_gp, lf_gp = logits.detach().split([8, 8, 2, 2])
    with torch.no_grad():  # the gp logits are D at the perturbed inputs, computed alone
        torch.testing.assert_close(m.discriminator(real_gp, y[:2], t_tgt[:2]), lr_gp)
    r1 = (0.25 * 0.5 * (lr_gp - lr[:2]).square() / 0.01**2).mean()
    r2 = (0.25 * 0.5 * (lf_gp - lf[:2]).square() / 0.01**2).mean()
    torch.testing.assert_close(out["r1"], r1)
    torch.testing.assert_close(out["r2"], r2)
    torch.testing.assert_close(out["adv"], F.softplus(-(lr - lf)).mean())
    torch.testing.assert_close(out["cp"], 0.01 * (lr + lf).square().mean())
    total = out["adv"] + out["r1"] + out["r2"] + out["cp"]
    torch.testing.assert_close(out["loss"].detach(), total)
    # D's step trains D only; the generator ran without gradients
    out["loss"].backward()
    assert all(p.grad is None for p in m.generator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.discriminator.parameters())


def test_generator_step_trains_the_generator_only():
    m = _method()
    out = m.training_step(_batch(), 1, "generator")
    out["loss"].backward()
    assert all(p.grad is None for p in m.discriminator.parameters())
    # frozen for the step only
    assert all(p.requires_grad for n, p in m.discriminator.named_parameters() if n != "pos_embed")
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.generator.parameters())
    torch.testing.assert_close(out["loss"].detach(), out["adv"] + out["ot"])
    with pytest.raises(ValueError, match="unknown optimizer"):
        m.training_step(_batch(), 0, "critic")


class _Recording(AdvFlow):
    """AdvFlow that snapshots both networks after every optimizer step."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.snapshots = [self._snapshot()]

    def _snapshot(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            name: {k: v.detach().clone() for k, v in getattr(self, name).state_dict().items()}
            for name in ("generator", "discriminator")
        }

    def on_after_optimizer_step(self, step: int, optimizer: str) -> None:
        self.snapshots.append(self._snapshot())


def _moved(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_one_trainer_run_alternates_the_two_optimizers(tmp_path):
    from paperzoo.core import OptimConfig, TrainerConfig, get_recipe
    from paperzoo.core.run import RunContext
    from paperzoo.train import Trainer
    from paperzoo.train.gan import GanStepPlan

    torch.manual_seed(0)
    g = build_generator("B", **SMALL)  # DiT's init: zero output layer, as in training
    d = build_discriminator("B", **SMALL)
    method = _Recording(g, d, ot_steps=4)
    x, y = _batch(32)
    adamw = OptimConfig(name="adamw", lr=1e-3, betas=(0.0, 0.9), weight_decay=0.01,
                        schedule="constant")  # fmt: skip
    trainer = Trainer(
        method, TensorDataset(x, y),
        RunContext(out_dir=tmp_path, recipe=get_recipe("advflow_tiny")),
        TrainerConfig(max_steps=4, checkpoint_every=4, log_every=1, amp="off", ema_decay=0.9,
                      tensorboard=False, progress=False, device="cpu"),
        {"generator": adamw, "discriminator": adamw}, batch_size=8,
        step_plan=GanStepPlan(d_steps_per_g=1), clip_grad_norm={"generator": 50.0,
                                                                "discriminator": 50.0},
    )  # fmt: skip
    state = trainer.fit()
    assert state.step == 4
    for i, name in enumerate(["discriminator", "generator"] * 2):
        other = "generator" if name == "discriminator" else "discriminator"
        before, after = method.snapshots[i], method.snapshots[i + 1]
        assert _moved(before[name], after[name]), f"step {i} did not move the {name}"
        assert not _moved(before[other], after[other]), f"step {i} moved the {other}"
    assert method.grad_norm.square_avg.item() > 0
    assert trainer.ema is not None and int(trainer.ema.n_averaged) == 2
    assert (tmp_path / "model_ema.safetensors").is_file()


# -- the guided stage: classifier guidance and discriminator augmentation ---------------------


def _classifier(seed: int = 2) -> torch.nn.Module:
    from paperzoo.advflow.model import build_classifier

    return _randomize(build_classifier("B", **SMALL), seed)


def test_classifier_guidance_loss_by_hand():
    from paperzoo.advflow.method import classifier_guidance_loss

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    labels = torch.tensor([0, 2, 1])
    t = torch.tensor([0.05, 0.1, 0.3])  # the last is outside [0, 0.1]
    ce = [-math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1))),
          -math.log(1 / (2 + math.e)), math.log(3)]  # fmt: skip
    got = classifier_guidance_loss(logits, labels, t, cg_scale=0.003, lo=0.0, hi=0.1)
    assert got.item() == pytest.approx(0.003 * (ce[0] + ce[1] + 0.0) / 3, rel=1e-5)
    none = classifier_guidance_loss(logits, labels, t + 0.5, cg_scale=0.003, lo=0.0, hi=0.1)
    assert none.item() == 0.0


def test_the_generator_step_adds_the_cg_term_computed_from_the_frozen_classifier():
    from paperzoo.advflow.method import classifier_guidance_loss

    classifier = _classifier()
    method = _method(classifier=classifier, cg_scale=0.003, cg_interpolate=True)
    x, y = _batch()
    torch.manual_seed(11)
    out = method.training_step((x, y), 1, "generator")
    # the same draws by hand: the pair (t_cg ~ U(0, 0.1), its noise), then G and C
    torch.manual_seed(11)
    p = method._pair((x, y))
    assert ((p["t_cg"] >= 0) & (p["t_cg"] <= 0.1)).all() and p["t_cg"].std() > 0
    fake = method.generator.predict_target(p["x_src"], y, p["t_src"], p["t_tgt"])
    x_cg = (1 - p["t_cg"].view(-1, 1, 1, 1)) * fake + p["t_cg"].view(-1, 1, 1, 1) * p["noise_cg"]
    want = 0.003 * F.cross_entropy(classifier(x_cg, p["t_cg"]), y)
    torch.testing.assert_close(out["cg"], want.detach(), rtol=1e-5, atol=1e-7)
    assert out["cg"] == classifier_guidance_loss(
        classifier(x_cg, p["t_cg"]), y, p["t_cg"], cg_scale=0.003, lo=0, hi=0.1
    )
    torch.testing.assert_close(out["loss"].detach(), out["adv"] + out["ot"] + out["cg"])
    # gradients reach G, not the classifier
    method.zero_grad(set_to_none=True)
    method.training_step((x, y), 1, "generator")["loss"].backward()
    assert all(p.grad is None for p in classifier.parameters())
    assert all(not p.requires_grad for p in classifier.parameters())
    assert method.generator.x_embedder.proj.weight.grad is not None


def test_the_cg_gradient_alone_reaches_the_generator():
    classifier = _classifier()
    method = _method(classifier=classifier, cg_scale=1.0)
    x, y = _batch()
    fake = method.generator(torch.randn_like(x), y).detach().requires_grad_(True)
    t_cg = torch.full((len(x),), 0.05)
    cg = method._guidance(fake, {"t_cg": t_cg, "noise_cg": torch.randn_like(x), "y": y})
    (grad,) = torch.autograd.grad(cg, fake)
    assert grad.abs().sum() > 0
    # cg_flow=False: t_cg = t_tgt (= 0 for 1NFE), inside [0, 0.1]; at t_tgt outside, no loss
    method.cg_flow = False
    assert torch.equal(method._pair((x, y))["t_cg"], torch.zeros(len(x)))
    far = method._guidance(fake, {"t_cg": t_cg + 0.5, "noise_cg": torch.randn_like(x), "y": y})
    assert far.item() == 0.0


def test_the_unguided_method_has_no_cg_term_and_the_same_random_stream():
    x, y = _batch()
    torch.manual_seed(5)
    a = _method().training_step((x, y), 1, "generator")
    torch.manual_seed(5)
    b = _method(augment_p=0.0).training_step((x, y), 1, "generator")
    assert "cg" not in a and torch.equal(a["loss"], b["loss"])


def test_augmentation_applies_one_transform_to_real_and_fake():
    from paperzoo.advflow.method import augment_pair

    real = torch.rand(16, 4, 8, 8) + 1.0  # no zeros before augmenting
    fake = torch.rand(16, 4, 8, 8) + 1.0
    torch.manual_seed(0)
    real_aug, fake_aug = augment_pair(real, fake, 1.0)
    assert real_aug.shape == real.shape and fake_aug.shape == fake.shape
    erased_real, erased_fake = real_aug == 0, fake_aug == 0
    assert erased_real.any() and torch.equal(erased_real, erased_fake)
    # the same input in both halves comes out the same
    torch.manual_seed(1)
    a, b = augment_pair(real, real.clone(), 1.0)
    assert torch.equal(a, b) and not torch.equal(a, real)
    # p = 0 is the identity
    same_real, same_fake = augment_pair(real, fake, 0.0)
    assert same_real is real and same_fake is fake


def test_augmentation_is_in_both_steps_and_lets_the_gradient_through():
    x, y = _batch()
    for optimizer in ("discriminator", "generator"):
        torch.manual_seed(7)
        plain = _method().training_step((x, y), 1, optimizer)
        torch.manual_seed(7)
        aug = _method(augment_p=1.0).training_step((x, y), 1, optimizer)
        assert not torch.equal(plain["logits_real"], aug["logits_real"])
    method = _method(augment_p=1.0)
    method.training_step((x, y), 1, "generator")["loss"].backward()
    assert method.generator.x_embedder.proj.weight.grad.abs().sum() > 0


def test_noisy_classifier_training_step_by_hand():
    from paperzoo.advflow.method import NoisyClassifierTraining

    classifier = _classifier()
    method = NoisyClassifierTraining(classifier)
    x, y = _batch()
    torch.manual_seed(4)
    out = method.training_step((x, y), 0)
    torch.manual_seed(4)
    t = torch.rand(len(x))
    x_t = (1 - t.view(-1, 1, 1, 1)) * x + t.view(-1, 1, 1, 1) * torch.randn_like(x)
    torch.testing.assert_close(out["loss"], F.cross_entropy(classifier(x_t, t), y))
    assert method.trainable_module() is classifier
