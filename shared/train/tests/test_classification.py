"""The shared classification task: method, precise BN, multi-view and single-view testing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import TESTS_DIR, subprocess_env
from torch import nn
from torch.utils.data import Dataset

from paperzoo.core.config import OptimConfig
from paperzoo.train import build_optimizer
from paperzoo.train.classification import (
    Classification,
    evaluate,
    evaluate_multiview,
    precise_bn,
    soft_cross_entropy,
)


class _Views(Dataset):
    """``num_views`` random clips per video, views of a video contiguous: (clip, label, video)."""

    def __init__(self, num_videos: int, num_views: int, num_classes: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        n = num_videos * num_views
        # a random colour per clip: pooled features, hence predictions, differ between views
        self.clips = torch.randn(n, 3, 4, 8, 8, generator=g) + 2 * torch.randn(
            n, 3, 1, 1, 1, generator=g
        )
        self.labels = torch.randint(0, num_classes, (num_videos,), generator=g)
        self.num_views, self.num_videos = num_views, num_videos

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int):
        video = index // self.num_views
        return self.clips[index], int(self.labels[video]), video


def _small_model(num_classes: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv3d(3, 6, 3, padding=1),
        nn.BatchNorm3d(6),
        nn.Tanh(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(6, num_classes),
    )


def make_views_and_model() -> tuple[_Views, nn.Module, int]:
    """Also used by the 2-rank torchrun worker (scripts/multiview_worker.py)."""
    num_classes = 7
    model = _small_model(num_classes)
    with torch.no_grad():  # non-trivial running statistics, so eval mode matters
        model[5].weight.mul_(20.0)  # confident, view-dependent predictions
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    data = _Views(num_videos=11, num_views=3, num_classes=num_classes)
    # Labels: the view-averaged prediction for even videos, the least likely class for odd ones,
    # so top-1 and top-5 are neither 0 nor 100 and scoring fewer views would change them.
    model.eval()
    with torch.no_grad():
        mean = model(data.clips).softmax(1).view(11, 3, num_classes).mean(1)
    data.labels = torch.where(torch.arange(11) % 2 == 0, mean.argmax(1), mean.argmin(1))
    return data, model, num_classes


def _brute_force(model: nn.Module, data: _Views, num_classes: int) -> dict[str, float]:
    model.eval()
    top1 = top5 = first_view = 0
    with torch.no_grad():
        for v in range(data.num_videos):
            probs = [
                model(data[i][0][None]).softmax(1)[0]
                for i in range(v * data.num_views, (v + 1) * data.num_views)
            ]
            mean = torch.stack(probs).mean(0)
            label = int(data.labels[v])
            top1 += int(mean.argmax()) == label
            top5 += label in mean.topk(5).indices.tolist()
            first_view += int(probs[0].argmax()) == label
    n = data.num_videos
    return {"top1": 100 * top1 / n, "top5": 100 * top5 / n, "first_view_top1": 100 * first_view / n}


def test_multiview_is_the_average_of_each_videos_softmax():
    data, model, num_classes = make_views_and_model()
    expected = _brute_force(model, data, num_classes)
    # the views disagree: scoring one view per video would give another number
    assert expected["first_view_top1"] != expected["top1"]
    model.train()
    got = evaluate_multiview(model, data, num_classes=num_classes, batch_size=4)
    assert model.training  # its mode is restored
    assert got["top1"] == pytest.approx(expected["top1"])
    assert got["top5"] == pytest.approx(expected["top5"])
    assert got["num_videos"] == 11
    with pytest.raises(ValueError, match="5 scores, not 7"):
        evaluate_multiview(_small_model(5), data, num_classes=7)
    with pytest.raises(ValueError, match="pass num_videos"):
        evaluate_multiview(model, torch.utils.data.Subset(data, range(6)), num_classes=7)


def test_multiview_sharded_over_two_ranks_matches_one_process(tmp_path):
    data, model, num_classes = make_views_and_model()
    single = evaluate_multiview(model, data, num_classes=num_classes, batch_size=4)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(TESTS_DIR / "scripts" / "multiview_worker.py"), str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    for rank in (0, 1):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert result == pytest.approx(single), rank


def test_precise_bn_sets_exact_batch_statistics():
    model = _small_model(3)
    bn = model[1]
    data = _Views(num_videos=24, num_views=1, num_classes=3, seed=1)
    seen: list[torch.Tensor] = []
    hook = bn.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    model.eval()
    used = precise_bn(model, data, num_batches=3, batch_size=8)
    hook.remove()
    assert used == 3 and len(seen) == 3 and not model.training
    means = torch.stack([x.mean(dim=(0, 2, 3, 4)) for x in seen])
    variances = torch.stack([x.transpose(0, 1).flatten(1).var(dim=1) for x in seen])  # unbiased
    torch.testing.assert_close(bn.running_mean, means.mean(0))
    torch.testing.assert_close(bn.running_var, variances.mean(0))
    # the three batches cover the data: the mean is the data's, not a momentum average
    with torch.no_grad():
        everything = model[0](data.clips)
    torch.testing.assert_close(bn.running_mean, everything.mean(dim=(0, 2, 3, 4)))
    assert bn.momentum == 0.1  # restored
    assert precise_bn(model, data, num_batches=0, batch_size=8) == 0
    with pytest.raises(ValueError, match="full batch of 32"):
        precise_bn(model, data, num_batches=2, batch_size=32)


def test_classification_loss_and_param_groups():
    model = _small_model(4)
    x = torch.randn(5, 3, 4, 8, 8)
    y = torch.tensor([0, 1, 2, 3, 1])
    method = Classification(model, label_smoothing=0.1, norm_weight_decay=0.0)
    out = method.training_step((x, y), 0)
    torch.testing.assert_close(out["loss"], F.cross_entropy(model(x), y, label_smoothing=0.1))
    assert 0.0 <= float(out["top1"]) <= 1.0
    soft = torch.softmax(torch.randn(5, 4), 1)
    torch.testing.assert_close(
        method.training_step((x, soft), 0)["loss"], soft_cross_entropy(model(x), soft)
    )
    opt = build_optimizer(method, OptimConfig(name="adamw", lr=1e-3, weight_decay=0.05), lr=1e-3)
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decay[id(model[1].weight)] == 0.0 and decay[id(model[1].bias)] == 0.0
    assert decay[id(model[0].weight)] == 0.05 and decay[id(model[5].weight)] == 0.05
    plain = Classification(model)  # norm_weight_decay=None: one group, the optimizer's decay
    opt = build_optimizer(plain, OptimConfig(name="adamw", lr=1e-3, weight_decay=0.05), lr=1e-3)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05]
    mixed = Classification(model, mixup=lambda a, b: (a.flip(0), F.one_hot(b, 4).float()))
    torch.testing.assert_close(
        mixed.training_step((x, y), 0)["loss"],
        soft_cross_entropy(model(x.flip(0)), F.one_hot(y, 4).float()),
    )
    with pytest.raises(ValueError, match="label_smoothing"):
        Classification(model, label_smoothing=1.5)


def test_single_view_evaluate_with_label_groups():
    data, model, _ = make_views_and_model()
    got = evaluate(model, data, batch_size=5, label_groups={"parity": lambda y: y % 2})
    model.eval()
    with torch.no_grad():
        pred = model(data.clips).argmax(1)
    labels = data.labels.repeat_interleave(data.num_views)
    assert got["top1"] == pytest.approx(100 * (pred == labels).double().mean().item())
    assert got["parity"] == pytest.approx(100 * (pred % 2 == labels % 2).double().mean().item())
    assert got["parity"] >= got["top1"]
