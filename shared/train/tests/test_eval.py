"""Evaluation protocols against independent computations."""

from __future__ import annotations

import pytest
import torch
from tiny_methods import make_ctx, tiny_configs
from torch import nn

from paperzoo.train import Trainer
from paperzoo.train.eval import (
    LinearClassifierMethod,
    accuracy,
    extract_features,
    knn_accuracy,
    knn_classify,
    linear_probe,
    moco_linear_optim_config,
)


def _blobs(n_per_class: int, num_classes: int, dim: int, spread: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, dim, generator=g) * 3
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    feats = centers[labels] + spread * torch.randn(len(labels), dim, generator=g)
    return feats, labels


def test_accuracy_against_counting():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(50, 7, generator=g), torch.randint(0, 7, (50,), generator=g)
    ranks = (logits > logits.gather(1, target[:, None])).sum(1)  # how many classes beat the truth
    top1, top5 = accuracy(logits, target, topk=(1, 5))
    assert top1 == pytest.approx(100 * (ranks == 0).float().mean().item())
    assert top5 == pytest.approx(100 * (ranks < 5).float().mean().item())
    assert accuracy(logits[:, :3], target.clamp(max=2), topk=(5,)) == [100.0]


def test_knn_matches_brute_force_loop():
    g = torch.Generator().manual_seed(1)
    train, train_y = torch.randn(60, 5, generator=g), torch.randint(0, 4, (60,), generator=g)
    test = torch.randn(9, 5, generator=g)
    k, t = 7, 0.07
    scores = knn_classify(train, train_y, test, k=k, temperature=t, num_classes=4, batch_size=4)
    for i in range(len(test)):
        sims = []
        for j in range(len(train)):
            a, b = test[i], train[j]
            sims.append((float(a @ b) / (float(a.norm()) * float(b.norm())), int(train_y[j])))
        sims.sort(key=lambda s: -s[0])
        expected = [0.0] * 4
        for sim, label in sims[:k]:
            expected[label] += float(torch.tensor(sim / t).exp())
        torch.testing.assert_close(scores[i], torch.tensor(expected), rtol=1e-4, atol=1e-4)
    assert knn_classify(train, train_y, test, k=500).shape == (9, 4)  # k clipped to N


def test_knn_and_probes_separable_vs_shuffled():
    train, train_y = _blobs(40, 5, 16, spread=0.5, seed=0)
    test, test_y = _blobs(20, 5, 16, spread=0.5, seed=0)
    assert knn_accuracy(train, train_y, test, test_y)["top1"] == 100.0
    for protocol, kwargs in (("tiny", {}), ("paper", {"epochs": 20})):
        result = linear_probe(train, train_y, test, test_y, protocol=protocol, **kwargs)
        assert result.top1 == 100.0 and result.top5 == 100.0, protocol
    # Random features with shuffled labels: nothing to learn, test accuracy near 1/5.
    g = torch.Generator().manual_seed(5)
    noise, noise_test = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    labels = torch.randint(0, 5, (400,), generator=g)
    chance = linear_probe(noise, labels, noise_test, labels[torch.randperm(400, generator=g)])
    assert 10.0 < chance.top1 < 30.0 and chance.train_top1 > chance.top1


def test_extract_features_order_and_eval_mode():
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5))
    model.forward_features = lambda x: model(x) * 2  # preferred over forward
    data = [(torch.randn(4), i % 3) for i in range(10)]
    feats, labels = extract_features(model, data, batch_size=3)
    model.eval()
    expected = model(torch.stack([x for x, _ in data])) * 2
    torch.testing.assert_close(feats, expected.detach())
    assert labels.tolist() == [i % 3 for i in range(10)]


def test_linear_classifier_method_trains_only_the_head(tmp_path):
    torch.manual_seed(0)
    feats, labels = _blobs(16, 3, 4, spread=0.3, seed=2)
    backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    method = LinearClassifierMethod(backbone, feature_dim=8, num_classes=3)
    trainer_cfg, _ = tiny_configs(max_steps=30, log_every=30)
    optim_cfg = moco_linear_optim_config()
    optim_cfg.lr = 0.5
    data = list(zip(feats, labels))
    state = Trainer(method, data, make_ctx(tmp_path), trainer_cfg, optim_cfg, batch_size=12).fit()
    for key, value in backbone.state_dict().items():  # frozen: weights and BN statistics
        assert torch.equal(value, before[key]), key
    assert state.metrics["top1"] > 90.0
    assert moco_linear_optim_config().lr == 30.0 and moco_linear_optim_config().weight_decay == 0.0
