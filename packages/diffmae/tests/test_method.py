"""The objectives: the DDPM schedule round trip, what each loss sees, and fine-tuning's LLRD."""

from __future__ import annotations

import pytest
import torch

from paperzoo.diffmae.method import (
    DiffMAEPretraining,
    Finetune,
    MAEPretraining,
    build_method,
    ddpm_scheduler,
    encoder_state_dict,
)
from paperzoo.diffmae.model import build_classifier, build_pretraining_model, gather_tokens


def test_scheduler_round_trip_and_schedules():
    sched = ddpm_scheduler()
    assert sched.config.num_train_timesteps == 1000 and sched.config.prediction_type == "sample"
    assert not sched.config.clip_sample
    x0, eps = torch.randn(4, 16, 49), torch.randn(4, 16, 49)
    t = torch.tensor([0, 10, 500, 999])
    xt = sched.add_noise(x0, eps, t)
    abar = sched.alphas_cumprod[t].view(-1, 1, 1)
    torch.testing.assert_close(xt, abar.sqrt() * x0 + (1 - abar).sqrt() * eps)
    # x0 back from x_t and the noise (not at t=999, where sqrt(abar) ~ 1e-5 amplifies rounding).
    back = (xt[:3] - (1 - abar[:3]).sqrt() * eps[:3]) / abar[:3].sqrt()
    torch.testing.assert_close(back, x0[:3], rtol=1e-4, atol=1e-4)
    assert float(abar[0]) > 0.999 and float(abar[-1]) < 1e-3  # clean .. pure noise
    # The cosine schedule keeps more signal mid-way than the linear one.
    lin = ddpm_scheduler(beta_schedule="linear")
    assert sched.alphas_cumprod[500] > lin.alphas_cumprod[500]
    assert lin.betas[0] == pytest.approx(1e-4) and lin.betas[-1] == pytest.approx(0.02)


def test_sampler_with_a_perfect_x0_prediction_lands_on_x0():
    sched = ddpm_scheduler()
    sched.set_timesteps(10)
    x0 = torch.randn(2, 5, 8)
    g = torch.Generator().manual_seed(0)
    xt = torch.randn(2, 5, 8, generator=g)
    for t in sched.timesteps:
        xt = sched.step(x0, t, xt, generator=g).prev_sample
    torch.testing.assert_close(xt, x0, rtol=1e-5, atol=1e-5)  # t=0 returns the prediction


def test_diffmae_loss_is_the_mse_of_the_masked_patches_x0():
    torch.manual_seed(0)
    model = build_pretraining_model("tiny_mnist", "diffmae")
    method = DiffMAEPretraining(model)
    x = torch.randn(3, 1, 28, 28)
    seen: dict[str, torch.Tensor] = {}
    original = model.forward_decoder

    def spy(features, noisy, ids, timesteps):
        seen.update(noisy=noisy, ids=ids, t=timesteps)
        out = original(features, noisy, ids, timesteps)
        seen["pred"] = out
        return out

    model.forward_decoder = spy  # type: ignore[method-assign]
    loss = method.training_step((x, torch.zeros(3)), 0)["loss"]
    assert seen["ids"].shape == (3, 12)  # 75% of 16 patches masked, only those decoded
    target = gather_tokens(model.patchify(x), seen["ids"])
    torch.testing.assert_close(loss, torch.mean((seen["pred"] - target) ** 2))
    assert (seen["t"] >= 0).all() and (seen["t"] < 1000).all()
    # The decoder's input is the masked patches noised to step t.
    abar = method.scheduler.alphas_cumprod[seen["t"]].view(-1, 1, 1)
    eps = (seen["noisy"] - abar.sqrt() * target) / (1 - abar).sqrt()
    assert 0.5 < float(eps.std()) < 1.5


def test_plain_diffusion_noises_every_patch_and_the_encoder_sees_them():
    torch.manual_seed(0)
    model = build_pretraining_model("tiny_mnist", "diffusion")
    assert model.conditioning == "none"
    inputs: list[torch.Tensor] = []
    model.patch_embed.register_forward_hook(lambda m, a, out: inputs.append(a[0]))
    x = torch.randn(2, 1, 28, 28)
    out = DiffMAEPretraining(model)(x)
    assert torch.isfinite(out["loss"])
    assert inputs[0].shape == x.shape and not torch.allclose(inputs[0], x)  # noisy, not clean
    # DiffMAE's encoder sees the clean image (and keeps only the visible patches).
    inputs.clear()
    dm = build_pretraining_model("tiny_mnist", "diffmae")
    dm.patch_embed.register_forward_hook(lambda m, a, out: inputs.append(a[0]))
    DiffMAEPretraining(dm)(x)
    assert torch.equal(inputs[0], x)


def test_mae_loss_covers_the_masked_patches_only():
    torch.manual_seed(0)
    model = build_pretraining_model("tiny_mnist", "mae")
    method = MAEPretraining(model, mask_ratio=0.75)
    x = torch.randn(2, 1, 28, 28)
    loss = method(x)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and model.mask_token.grad.abs().sum() > 0
    assert isinstance(build_method(model), MAEPretraining)
    assert isinstance(build_method(build_pretraining_model("tiny_mnist")), DiffMAEPretraining)
    with pytest.raises(TypeError):
        DiffMAEPretraining(model)  # type: ignore[arg-type]


def test_every_pretraining_parameter_gets_a_gradient():
    # DDP without find_unused_parameters needs it (decoder blocks, time embedding, encoder norm).
    for method in ("diffmae", "mae", "diffusion"):
        torch.manual_seed(0)
        model = build_pretraining_model("tiny_mnist", method)
        build_method(model)(torch.randn(4, 1, 28, 28))["loss"].backward()
        dead = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not dead, (method, dead)


def test_finetune_layer_decay_scales_and_weight_decay():
    model = build_classifier("tiny_mnist", num_classes=10)
    method = Finetune(model, layer_decay=0.5, weight_decay=0.05, label_smoothing=0.1)
    groups = method.param_groups()
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    wd = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert len(scale) == sum(1 for p in model.parameters() if p.requires_grad)
    depth = len(model.blocks)  # 4: stem 0.5**5, block i 0.5**(4 - i), head 1
    assert scale[id(model.patch_embed.proj.weight)] == scale[id(model.cls_token)] == 0.5**5
    assert [scale[id(b.attn.qkv.weight)] for b in model.blocks] == [
        0.5 ** (depth - i) for i in range(depth)
    ]
    assert scale[id(model.head.weight)] == scale[id(model.fc_norm.weight)] == 1.0
    assert wd[id(model.pos_embed)] == wd[id(model.cls_token)] == wd[id(model.head.bias)] == 0.0
    assert wd[id(model.blocks[0].mlp.fc1.weight)] == 0.05
    out = method.training_step((torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])), 0)
    assert set(out) == {"loss", "top1"} and torch.isfinite(out["loss"])


def test_encoder_state_dict_moves_into_the_classifier():
    torch.manual_seed(0)
    pre = build_pretraining_model("tiny_mnist", "diffmae")
    state = encoder_state_dict(pre.state_dict())
    assert not any(k.startswith(("decoder", "norm.")) for k in state)
    clf = build_classifier("tiny_mnist", num_classes=10)
    result = clf.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == ["fc_norm.bias", "fc_norm.weight", "head.bias",
                                           "head.weight"] and not result.unexpected_keys  # fmt: skip
    assert torch.equal(clf.blocks[2].mlp.fc2.weight, pre.blocks[2].mlp.fc2.weight)
