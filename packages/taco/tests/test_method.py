"""TaCo's loss: InfoNCE + sum of weighted head cross-entropies, and the four arms' switches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from paperzoo.mocov2.method import encode_in_chunks
from paperzoo.taco.method import TaCoMethod
from paperzoo.taco.model import taco_r3d_narrow

TASKS = {"rotation": 4, "shuffle": 2, "reverse": 2, "speed": 3}


def _batch(n: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(n, 3, 4, 16, 16, generator=g), torch.randn(n, 3, 4, 16, 16, generator=g)
    targets = {name: torch.randint(c, (n,), generator=g) for name, c in TASKS.items()}
    return [q, k], targets


def _model(**kw):
    torch.manual_seed(0)
    return taco_r3d_narrow(tasks=TASKS, widths=(8, 8, 16, 16), queue_size=32, **kw)


def test_heads_alone_loss_is_the_weighted_sum_of_cross_entropies():
    model = _model()
    weights = {"rotation": 0.5, "shuffle": 2.0, "reverse": 0.0, "speed": 1.0}
    method = TaCoMethod(model, contrastive=False, task_weights=weights, bn_splits=2)
    batch = _batch()
    queue = model.queue.clone()
    out = method.training_step(batch, 0)
    _, pooled = encode_in_chunks(model.encoder_q, batch[0][0], 2, return_features=True)
    logits = model.predict_transformations(pooled)
    expected = sum(weights[n] * F.cross_entropy(logits[n], batch[1][n]) for n in TASKS)
    torch.testing.assert_close(out["loss"], expected)
    assert torch.equal(model.queue, queue)  # no contrastive step: the queue is untouched
    assert "contrast_loss" not in out


def test_taco_adds_the_head_losses_to_infonce_and_trains_backbone_and_heads():
    model = _model()
    method = TaCoMethod(model, bn_splits=2)
    out = method.training_step(_batch(), 0)
    heads = sum(out[f"{n}_loss"] for n in TASKS)
    torch.testing.assert_close(out["loss"].detach(), out["contrast_loss"] + heads)
    out["loss"].backward()
    assert model.encoder_q.stem[0].weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.heads.parameters())
    assert all(p.grad is None for p in model.encoder_k.parameters())
    assert int(model.queue_ptr) == 8  # the keys were enqueued


def test_temporal_augmentation_alone_has_no_head_loss():
    torch.manual_seed(0)
    model = taco_r3d_narrow(tasks={}, widths=(8, 8, 16, 16), queue_size=32)
    method = TaCoMethod(model, heads=False, bn_splits=2)
    views, _ = _batch()
    out = method.training_step((views, {}), 0)
    torch.testing.assert_close(out["loss"].detach(), out["contrast_loss"])
    assert len(model.heads) == 0


def test_bad_switches_and_missing_labels_are_errors():
    model = _model()
    with pytest.raises(ValueError, match="needs the contrastive loss"):
        TaCoMethod(model, contrastive=False, heads=False)
    with pytest.raises(ValueError, match="no head for"):
        TaCoMethod(model, task_weights={"colour": 1.0})
    views, targets = _batch()
    del targets["speed"]
    with pytest.raises(ValueError, match=r"no labels for the heads \['speed'\]"):
        TaCoMethod(model, bn_splits=2).training_step((views, targets), 0)


def test_nt_xent_matches_the_simclr_formula():
    from paperzoo.taco.method import nt_xent

    g = torch.Generator().manual_seed(0)
    z1 = F.normalize(torch.randn(3, 5, generator=g), dim=1)
    z2 = F.normalize(torch.randn(3, 5, generator=g), dim=1)
    z, t, n = torch.cat([z1, z2]), 0.5, 3
    expected = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)  # the other view of the same clip
        others = sum(torch.exp(z[i] @ z[k] / t) for k in range(2 * n) if k != i)
        expected += -torch.log(torch.exp(z[i] @ z[j] / t) / others)
    torch.testing.assert_close(nt_xent(z1, z2, t), expected / (2 * n))


def test_simclr_and_byol_frameworks_train_the_query_side_with_the_heads():
    from paperzoo.taco.method import byol_loss

    for framework in ("simclr", "byol"):
        torch.manual_seed(0)
        model = taco_r3d_narrow(
            tasks=TASKS, widths=(8, 8, 16, 16), queue_size=32, byol_predictor=framework == "byol"
        )
        method = TaCoMethod(model, framework=framework, bn_splits=2)
        queue = model.queue.clone()
        out = method.training_step(_batch(), 0)
        heads = sum(out[f"{n}_loss"] for n in TASKS)
        torch.testing.assert_close(out["loss"].detach(), out["contrast_loss"] + heads)
        out["loss"].backward()
        assert model.encoder_q.stem[0].weight.grad.abs().sum() > 0, framework
        assert all(p.grad is None for p in model.encoder_k.parameters())
        assert torch.equal(model.queue, queue)  # no queue outside MoCo
        if framework == "byol":
            assert all(p.grad is not None for p in model.predictor.parameters())
    p, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    assert byol_loss(p, t).item() == pytest.approx(2.0)  # orthogonal: 2 - 2 * 0
    with pytest.raises(ValueError, match="byol_predictor=True"):
        TaCoMethod(_model(), framework="byol")


@pytest.mark.parametrize("framework", ["moco", "simclr", "byol"])
def test_the_recipe_builds_each_framework(framework):
    from paperzoo.taco.recipes import tiny_config
    from paperzoo.taco.reproduce import _build_model, _spec

    cfg = tiny_config()
    cfg.taco.framework = framework
    torch.manual_seed(0)
    model = _build_model(cfg, _spec(cfg))
    assert (model.predictor is not None) == (framework == "byol")
    method = TaCoMethod(model, framework=framework, bn_splits=2)
    out = method.training_step(_batch(), 0)
    assert torch.isfinite(out["loss"]) and out["contrast_loss"] > 0
