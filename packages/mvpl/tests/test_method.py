"""The objective: pseudo-label aggregation, the threshold, the masked loss, the training step."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.mvpl.method import (
    MvPL,
    aggregate_pseudo_labels,
    cutout_,
    masked_cross_entropy,
    strong_augment,
)
from paperzoo.mvpl.model import mvpl_r3d_tiny


def test_pseudo_label_is_the_mean_of_the_weak_views_softmax():
    # Two views, three samples, three classes (probabilities written by hand via log).
    p_rgb = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.4, 0.3, 0.3]])
    p_flow = torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.7, 0.2], [0.3, 0.3, 0.4]])
    labels, mask, conf = aggregate_pseudo_labels([p_rgb.log(), p_flow.log()], threshold=0.55)
    mean = (p_rgb + p_flow) / 2  # [[.4,.5,.1], [.15,.6,.25], [.35,.3,.35]]
    assert torch.allclose(conf, mean.max(1).values)
    assert labels.tolist() == [1, 1, 0]  # sample 0: the views disagree, the mean decides
    assert mask.tolist() == [0.0, 1.0, 0.0]  # 0.5 and 0.35 < 0.55 <= 0.6
    _, mask_low, _ = aggregate_pseudo_labels([p_rgb.log(), p_flow.log()], threshold=0.3)
    assert mask_low.tolist() == [1.0, 1.0, 1.0]
    _, mask_eq, _ = aggregate_pseudo_labels([p_rgb.log(), p_flow.log()], threshold=0.6)
    assert mask_eq[1] == 1.0  # the threshold itself passes (>=)


def test_masked_loss_matches_a_hand_computation():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    labels = torch.tensor([0, 2, 2])
    mask = torch.tensor([1.0, 0.0, 1.0])
    ce0 = -math.log(math.exp(2) / (math.exp(2) + 2))
    ce2 = -math.log(math.exp(3) / (math.exp(3) + 2))
    expected = (ce0 + 0.0 + ce2) / 3  # the masked sample counts in the mean but adds zero
    assert masked_cross_entropy(logits, labels, mask).item() == pytest.approx(expected, rel=1e-6)
    # A sample below the threshold gets no gradient at all.
    z = logits.clone().requires_grad_(True)
    masked_cross_entropy(z, labels, mask).backward()
    assert torch.count_nonzero(z.grad[1]) == 0 and torch.count_nonzero(z.grad[0]) > 0


def test_cutout_and_strong_augment():
    clip = torch.ones(3, 2, 8, 8)
    cutout_(clip, 0.5, 0.0, generator=torch.Generator().manual_seed(0))
    holes = clip == 0
    assert holes.any() and torch.equal(holes[:, 0], holes[:, 1])  # same box in every frame
    assert int(holes[0, 0].sum()) <= 16
    u8 = torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8)
    out = strong_augment(u8, num_ops=2, magnitude=9, cutout=0.25)
    assert out.shape == u8.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    plain = strong_augment(u8, num_ops=0, cutout=0.0)
    assert torch.allclose(plain, u8.float() / 255)


def _batch(b=6, t=4, size=16, classes=5):
    g = torch.Generator().manual_seed(0)
    clip = lambda: torch.randint(0, 256, (b, 3, t + 1, size, size), dtype=torch.uint8, generator=g)  # noqa: E731
    flow = lambda: torch.randn(b, 2, t, size, size, generator=g).half()  # noqa: E731
    labels = lambda: torch.randint(0, classes, (b,), generator=g)  # noqa: E731
    return (clip(), flow(), labels(), clip(), flow(), labels())


def test_training_step_is_finite_and_every_view_reaches_the_shared_backbone():
    torch.manual_seed(0)
    model = mvpl_r3d_tiny(num_classes=5, width=8)
    method = MvPL(model, threshold=0.0, mu=2)  # threshold 0: every pseudo-label is used
    out = method.training_step(_batch(), 0)
    assert set(out) >= {"loss", "loss_s", "loss_u", "pl_coverage", "pl_precision", "pl_correct"}
    assert torch.isfinite(out["loss"]) and out["pl_coverage"].item() == 1.0
    out["loss"].backward()
    for view, stem in model.view_stems.stems.items():
        grads = [p.grad for p in stem.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), view
        assert any(g.abs().sum() > 0 for g in grads), f"no gradient into the {view} stem"
    shared = model.shared_parameters()
    assert all(p.grad is not None for p in shared)

    # Each view alone: the gradient passes through the same shared weights, and only its stem.
    x = method.view_inputs(_batch()[0].float() / 255, _batch()[1], ("rgb", "tg", "flow"))
    first_shared = model.backbone.layer1[0].conv1[0].weight
    for view in ("rgb", "tg", "flow"):
        model.zero_grad(set_to_none=True)
        model(x[view], view).logsumexp(1).sum().backward()
        assert first_shared.grad is not None and first_shared.grad.abs().sum() > 0, view
        for other, stem in model.view_stems.stems.items():
            got = stem[0].weight.grad
            assert (got is not None) == (other == view), (view, other)


def test_fixmatch_and_supervised_arms():
    torch.manual_seed(0)
    batch = _batch()
    rgb_only = mvpl_r3d_tiny(num_classes=5, width=8, views=("rgb",))
    out = MvPL(rgb_only, views=("rgb",), threshold=1.0, mu=3).training_step(batch, 0)
    # threshold 1: no pseudo-label passes, the unlabelled loss is exactly zero.
    assert out["pl_coverage"].item() == 0.0 and out["loss_u"].item() == 0.0
    assert out["loss"].item() == pytest.approx(out["loss_s"].item())
    sup = MvPL(rgb_only, views=("rgb",), semi=False, mu=3).training_step(batch, 0)
    assert set(sup) == {"loss", "loss_s", "top1"} and torch.isfinite(sup["loss"])
    with pytest.raises(ValueError, match="no stem"):
        MvPL(rgb_only, views=("rgb", "flow"))


def test_loss_is_the_supervised_plus_lambda_times_the_unlabelled_mean_over_views():
    torch.manual_seed(0)
    model = mvpl_r3d_tiny(num_classes=5, width=8).eval()  # eval: BN fixed, so calls repeat
    method = MvPL(model, threshold=0.0, mu=2, lambda_u=0.5, randaugment_ops=0, cutout=0.0)
    batch = _batch()
    out = method.training_step(batch, 0)
    assert out["loss"].item() == pytest.approx(
        out["loss_s"].item() + 0.5 * out["loss_u"].item(), rel=1e-5
    )
    # With no strong augmentation, the strong inputs equal the weak ones: recompute L_u by hand.
    u_clip, u_flow = batch[3], batch[4]
    views = ("rgb", "tg", "flow")
    weak = method.view_inputs(u_clip.float() / 255, u_flow, views)
    with torch.no_grad():
        logits = {v: model(weak[v], v) for v in views}
        labels, mask, _ = aggregate_pseudo_labels(list(logits.values()), 0.0)
        lu = sum(masked_cross_entropy(logits[v], labels, mask) for v in views) / 3
    assert out["loss_u"].item() == pytest.approx(lu.item(), rel=1e-4)
