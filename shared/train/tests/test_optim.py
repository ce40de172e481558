"""Optimizers and schedules against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from paperzoo.core.config import OptimConfig
from paperzoo.train import LARS, build_optimizer, build_scheduler, lr_factor
from paperzoo.train.optim import scaled_lr


def test_warmup_cosine_step_constant():
    cos = OptimConfig(schedule="cosine", lr=1.0, min_lr=0.1)
    assert [lr_factor(s, cos, 10, 4, 1.0) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, cos, 10, 4, 1.0) == pytest.approx(1.0)
    assert lr_factor(7, cos, 10, 4, 1.0) == pytest.approx(
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))
    )
    assert lr_factor(10, cos, 10, 4, 1.0) == pytest.approx(0.1)
    step = OptimConfig(schedule="step", milestones=(0.6, 0.8), gamma=0.1)
    got = [lr_factor(s, step, 100, 0, 1.0) for s in (0, 59, 60, 79, 80, 99)]
    assert got == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_factor(5, OptimConfig(schedule="constant"), 10, 0, 1.0) == 1.0


def test_linear_scaling_rule():
    assert scaled_lr(OptimConfig(lr=0.1, base_batch=256), 1024) == pytest.approx(0.4)
    assert scaled_lr(OptimConfig(lr=0.03, base_batch=0), 1024) == 0.03


def test_scheduler_steps_per_optimizer_step():
    model = nn.Linear(2, 2)
    cfg = OptimConfig(name="sgd", lr=0.5, warmup_steps=2, schedule="cosine")
    opt = build_optimizer(model, cfg, lr=0.5)
    sched = build_scheduler(opt, cfg, max_steps=6, warmup_steps=2, peak_lr=0.5)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.5 * lr_factor(s, cfg, 6, 2, 0.5) for s in range(6)])


def test_lars_step_matches_formula():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    cfg = OptimConfig(name="lars", lr=0.2, momentum=0.9, weight_decay=0.01, trust_coefficient=0.02)
    opt = build_optimizer(model, cfg, lr=0.2)
    assert isinstance(opt, LARS)
    # Linear weight adapted + decayed; Linear bias, BN weight and bias excluded from both.
    adapted = [g for g in opt.param_groups if not g["lars_exclude"]]
    excluded = [g for g in opt.param_groups if g["lars_exclude"]]
    assert [p.shape for g in adapted for p in g["params"]] == [(4, 3)]
    assert len([p for g in excluded for p in g["params"]]) == 3 and all(
        g["weight_decay"] == 0 for g in excluded
    )
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
    # The same two steps by hand, from the same init and inputs.
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    mu = {n: torch.zeros_like(p) for n, p in ref.named_parameters()}
    for _ in range(2):
        for p in ref.parameters():
            p.grad = None
        ref(torch.randn(5, 3)).pow(2).sum().backward()
        with torch.no_grad():
            for n, p in ref.named_parameters():
                if n == "0.weight":
                    d = p.grad + 0.01 * p
                    d = d * (0.02 * p.norm() / d.norm())
                else:
                    d = p.grad.clone()
                mu[n] = 0.9 * mu[n] + d
                p -= 0.2 * mu[n]
    for n, p in model.named_parameters():
        torch.testing.assert_close(p, dict(ref.named_parameters())[n], rtol=1e-6, atol=1e-7)


def test_param_groups_hook_and_bias_norm_exclusion():
    class TwoPart(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Linear(3, 3)
            self.head = nn.Linear(3, 1)
            self.frozen = nn.Linear(3, 3).requires_grad_(False)

        def param_groups(self):
            return [
                {"params": self.backbone.parameters(), "lr_scale": 0.1},
                {"params": [*self.head.parameters(), *self.frozen.parameters()]},
            ]

    cfg = OptimConfig(name="adamw", weight_decay=0.05, exclude_bias_norm=True)
    opt = build_optimizer(TwoPart(), cfg, lr=1.0)
    summary = sorted(
        (g["lr"], g["weight_decay"], tuple(p.ndim for p in g["params"])) for g in opt.param_groups
    )
    assert summary == [(0.1, 0.0, (1,)), (0.1, 0.05, (2,)), (1.0, 0.0, (1,)), (1.0, 0.05, (2,))]
    assert isinstance(opt, torch.optim.AdamW)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(nn.Linear(2, 2).requires_grad_(False), cfg, lr=1.0)


class _TinyViT(nn.Module):
    """The parameter layout of a timm / MAE ViT, at toy size."""

    def __init__(self, depth: int = 3) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, 4))
        self.patch_embed = nn.Conv2d(1, 4, 2, 2)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 4)) for _ in range(depth)
        )
        self.fc_norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 10)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}


def test_layer_decay_groups_follow_the_vit_layers():
    from paperzoo.train.optim import layer_decay_param_groups, vit_layer_id

    model = _TinyViT(depth=3)
    groups = layer_decay_param_groups(model, weight_decay=0.05, layer_decay=0.5)
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    wd = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    ids = sorted(id(p) for g in groups for p in g["params"])
    assert ids == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    # 3 blocks: stem 0.5**4, block i 0.5**(3 - i), head 1.
    assert scale[id(model.cls_token)] == scale[id(model.patch_embed.weight)] == 0.5**4
    assert [scale[id(b[1].weight)] for b in model.blocks] == [0.5**3, 0.5**2, 0.5]
    assert scale[id(model.head.weight)] == scale[id(model.fc_norm.weight)] == 1.0
    assert wd[id(model.blocks[0][1].weight)] == 0.05 and wd[id(model.head.weight)] == 0.05
    assert wd[id(model.blocks[0][1].bias)] == wd[id(model.blocks[0][0].weight)] == 0.0
    assert wd[id(model.pos_embed)] == wd[id(model.cls_token)] == 0.0  # no_weight_decay()
    assert wd[id(model.patch_embed.weight)] == 0.05
    assert vit_layer_id("blocks.11.attn.qkv.weight", 12) == 12 and vit_layer_id("norm.w", 12) == 13


def test_layer_decay_reaches_the_optimizer_and_custom_layer_ids():
    from paperzoo.train.optim import layer_decay_param_groups

    model = _TinyViT(depth=2)
    model.blocks[0].requires_grad_(False)  # frozen parameters are left out

    class Method(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def param_groups(self):
            return layer_decay_param_groups(self.model, weight_decay=0.1, layer_decay=0.75)

    opt = build_optimizer(Method(), OptimConfig(name="adamw", lr=2.0), lr=2.0)
    lrs = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert id(model.blocks[0][1].weight) not in lrs
    assert lrs[id(model.blocks[1][1].weight)] == pytest.approx(2.0 * 0.75)
    assert lrs[id(model.patch_embed.weight)] == pytest.approx(2.0 * 0.75**3)
    assert lrs[id(model.head.weight)] == pytest.approx(2.0)
    # A rule of one's own: everything but the head is layer 1 of 1.
    groups = layer_decay_param_groups(
        model, weight_decay=0.0, layer_decay=0.5, num_layers=1,
        layer_id=lambda name: 2 if name.startswith("head") else 1, no_weight_decay=(),
    )  # fmt: skip
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    assert scale[id(model.head.weight)] == 1.0 and scale[id(model.cls_token)] == 0.5
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        layer_decay_param_groups(model, weight_decay=0.0, layer_decay=0.5, num_layers=1,
                                 layer_id=lambda name: 5)  # fmt: skip
    with pytest.raises(ValueError, match="num_layers="):
        layer_decay_param_groups(nn.Linear(2, 2), weight_decay=0.0, layer_decay=0.5)
