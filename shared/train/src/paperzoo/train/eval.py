"""Evaluation protocols for learned representations: kNN, linear probe, top-k accuracy.

- Weighted kNN as in InstDisc (Wu, Xiong, Yu, Lin, "Unsupervised Feature Learning via
  Non-Parametric Instance Discrimination", CVPR 2018, arXiv:1805.01978; github.com/zhirongw/
  lemniscate.pytorch): L2-normalised features, cosine similarity, the k=200 nearest training
  samples each vote for their class with weight exp(sim / T), T=0.07.
- Linear probe on frozen features as in MoCo (He et al., CVPR 2020, arXiv:1911.05722;
  github.com/facebookresearch/moco ``main_lincls.py``): a linear layer initialised N(0, 0.01),
  SGD lr 30, momentum 0.9, no weight decay, 100 epochs, lr x0.1 at epochs 60 and 80, batch 256.
  :func:`linear_probe` with ``protocol="paper"`` runs that schedule on precomputed features;
  :class:`LinearClassifierMethod` + :func:`moco_linear_optim_config` run it through the
  Trainer on augmented images, exactly as ``main_lincls.py`` does. ``protocol="tiny"`` is a
  fast deterministic alternative for small runs: standardised features, full-batch L-BFGS on
  the L2-regularised cross-entropy.
- :func:`accuracy` is ``main_lincls.py``'s top-k accuracy, in percent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.core.config import OptimConfig

__all__ = [
    "LinearClassifierMethod",
    "LinearProbeResult",
    "accuracy",
    "extract_features",
    "knn_accuracy",
    "knn_classify",
    "knn_metric",
    "linear_probe",
    "linear_probe_metric",
    "moco_linear_optim_config",
]


def accuracy(output: torch.Tensor, target: torch.Tensor, topk: Sequence[int] = (1,)) -> list[float]:
    """Top-k accuracies in percent.

    output: (N, C) scores or logits; target: (N,) int class ids. ``k`` larger than C counts as C
    (top-5 of a 3-class problem is 100%).
    """
    if output.ndim != 2 or target.ndim != 1 or output.shape[0] != target.shape[0]:
        raise ValueError(
            f"accuracy expects output (N, C) and target (N,), got {tuple(output.shape)} and "
            f"{tuple(target.shape)}"
        )
    if output.shape[0] == 0:
        raise ValueError("accuracy of an empty set is undefined: got 0 samples")
    maxk = min(max(topk), output.shape[1])
    pred = output.topk(maxk, dim=1).indices  # (N, maxk)
    hit = pred.eq(target.to(pred.device).view(-1, 1))
    return [hit[:, : min(k, maxk)].any(dim=1).double().mean().item() * 100.0 for k in topk]


def _default_feature_fn(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    forward_features = getattr(model, "forward_features", None)
    return forward_features if callable(forward_features) else model


@torch.no_grad()
def extract_features(
    model: nn.Module,
    data: Any,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    feature_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    amp: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a frozen model over a labelled dataset and return its features.

    data: a map-style dataset of ``(image, label)`` pairs, or a DataLoader yielding
    ``(images, labels)`` batches. The model runs in eval mode (BN uses running statistics)
    under ``no_grad``; ``feature_fn(x)`` defaults to ``model.forward_features`` when the model
    has one, else ``model(x)``. Features are flattened to 2-D.

    Returns ``(features (N, D) float32 on CPU, labels (N,) int64)``, in dataset order.
    """
    if isinstance(data, torch.utils.data.DataLoader):
        loader = data
    else:
        if len(data) == 0:
            raise ValueError("extract_features: the dataset is empty; nothing to extract")
        loader = torch.utils.data.DataLoader(
            data, batch_size=batch_size, shuffle=False, num_workers=num_workers, drop_last=False
        )
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    device = torch.device(device)
    fn = feature_fn or _default_feature_fn(model)
    was_training = model.training
    model.eval()
    feats, labels = [], []
    try:
        for batch in loader:
            if not isinstance(batch, (list, tuple)) or len(batch) < 2:
                raise ValueError(
                    "extract_features expects (images, labels) batches; got "
                    f"{type(batch).__name__}. Wrap the dataset so items are (image, label)."
                )
            x, y = batch[0], batch[1]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                f = fn(x.to(device, non_blocking=True))
            feats.append(f.float().flatten(1).cpu())
            labels.append(torch.as_tensor(y).long().cpu())
    finally:
        model.train(was_training)
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def knn_classify(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    *,
    k: int = 200,
    temperature: float = 0.07,
    num_classes: int | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Weighted kNN class scores (InstDisc): each of the k nearest neighbours votes exp(sim/T).

    train_features: (N, D); train_labels: (N,) int; test_features: (M, D). Features are
    L2-normalised here; similarity is cosine. ``k`` is clipped to N. Returns (M, C) float32
    scores on the features' device; ``scores.argmax(1)`` is the prediction.
    """
    if train_features.ndim != 2 or test_features.ndim != 2:
        raise ValueError("knn_classify expects 2-D features (N, D) and (M, D)")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"feature sizes differ: train D={train_features.shape[1]}, test D={test_features.shape[1]}"
        )
    if train_features.shape[0] != train_labels.shape[0] or train_features.shape[0] == 0:
        raise ValueError(
            f"need one label per training feature and at least one: {train_features.shape[0]} "
            f"features, {train_labels.shape[0]} labels"
        )
    num_classes = int(num_classes or int(train_labels.max()) + 1)
    k = min(k, train_features.shape[0])
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    labels = train_labels.to(train.device).long()
    out = []
    for start in range(0, test.shape[0], batch_size):
        sim = test[start : start + batch_size] @ train.T  # (b, N)
        top_sim, top_idx = sim.topk(k, dim=1)  # (b, k)
        weights = (top_sim / temperature).exp()
        scores = torch.zeros(sim.shape[0], num_classes, device=sim.device)
        scores.scatter_add_(1, labels[top_idx], weights)
        out.append(scores)
    return torch.cat(out) if out else torch.zeros(0, num_classes)


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    k: int = 200,
    temperature: float = 0.07,
    num_classes: int | None = None,
) -> dict[str, float]:
    """``{"top1": %, "top5": %}`` of :func:`knn_classify` on a labelled test set."""
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    scores = knn_classify(
        train_features,
        train_labels,
        test_features,
        k=k,
        temperature=temperature,
        num_classes=num_classes,
    )
    top1, top5 = accuracy(scores, test_labels, topk=(1, 5))
    return {"top1": top1, "top5": top5}


# -- linear probe ------------------------------------------------------------------------------


@dataclass
class LinearProbeResult:
    """Test and train top-k (percent) and the fitted classifier (features -> logits)."""

    top1: float
    top5: float
    train_top1: float
    classifier: nn.Module
    protocol: str


class _Standardize(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _moco_linear_init(fc: nn.Linear) -> nn.Linear:
    # main_lincls.py: fc.weight ~ N(0, 0.01), fc.bias = 0
    nn.init.normal_(fc.weight, mean=0.0, std=0.01)
    nn.init.zeros_(fc.bias)
    return fc


def _fit_paper(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    generator: torch.Generator,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    milestones: Sequence[int],
    momentum: float,
    weight_decay: float,
) -> nn.Module:
    fc = _moco_linear_init(nn.Linear(x.shape[1], num_classes))
    with torch.no_grad():  # deterministic init from the probe's own generator
        fc.weight.normal_(0.0, 0.01, generator=generator)
    opt = torch.optim.SGD(fc.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=0.1)
    n = x.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(fc(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    return fc


def _fit_tiny(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, *, weight_decay: float, max_iter: int
) -> nn.Module:
    # Full-batch L-BFGS with a strong-Wolfe line search converges in a few dozen iterations on
    # standardised features and has no learning rate to tune, which is what a tiny run needs.
    fc = nn.Linear(x.shape[1], num_classes)
    nn.init.zeros_(fc.weight)
    nn.init.zeros_(fc.bias)
    opt = torch.optim.LBFGS(
        fc.parameters(), lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-9, tolerance_change=1e-12,
    )  # fmt: skip

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(fc(x), y) + 0.5 * weight_decay * fc.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return fc


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    protocol: str = "tiny",
    num_classes: int | None = None,
    seed: int = 0,
    lr: float = 30.0,
    epochs: int = 100,
    batch_size: int = 256,
    milestones: Sequence[int] | None = None,
    momentum: float = 0.9,
    weight_decay: float | None = None,
    max_iter: int = 500,
) -> LinearProbeResult:
    """Fit a linear classifier on frozen features and report test top-1/top-5 (percent).

    features: (N, D) / (M, D) float; labels: (N,) / (M,) int64.

    - ``protocol="paper"``: MoCo's ``main_lincls.py`` schedule on the raw features: SGD
      ``lr`` 30, momentum 0.9, weight decay 0, ``epochs`` 100, lr x0.1 at 60% and 80% of the
      epochs (``milestones`` overrides, in epochs), batch 256, N(0, 0.01) init.
    - ``protocol="tiny"``: features standardised with the training mean/std, then full-batch
      L-BFGS (``max_iter``) on cross-entropy + ``weight_decay``/2 * |W|^2 (default 1e-4).
    """
    if protocol not in ("paper", "tiny"):
        raise ValueError(f"unknown linear-probe protocol {protocol!r}; use 'paper' or 'tiny'")
    for name, f, y in (
        ("train", train_features, train_labels),
        ("test", test_features, test_labels),
    ):
        if f.ndim != 2 or y.ndim != 1 or f.shape[0] != y.shape[0] or f.shape[0] == 0:
            raise ValueError(
                f"linear_probe: {name} features must be (N, D) with N >= 1 matching labels (N,); "
                f"got {tuple(f.shape)} and {tuple(y.shape)}"
            )
    x_train = train_features.detach().float().cpu()
    x_test = test_features.detach().float().cpu()
    y_train = train_labels.detach().long().cpu()
    y_test = test_labels.detach().long().cpu()
    num_classes = int(num_classes or int(max(y_train.max(), y_test.max())) + 1)
    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        if protocol == "paper":
            ms = milestones if milestones is not None else (int(0.6 * epochs), int(0.8 * epochs))
            fc = _fit_paper(
                x_train, y_train, num_classes, generator, lr=lr, epochs=epochs,
                batch_size=batch_size, milestones=ms, momentum=momentum,
                weight_decay=0.0 if weight_decay is None else weight_decay,
            )  # fmt: skip
            classifier: nn.Module = fc
        else:
            mean = x_train.mean(0)
            std = x_train.std(0).clamp_min(1e-6)
            standardize = _Standardize(mean, std)
            fc = _fit_tiny(
                standardize(x_train), y_train, num_classes,
                weight_decay=1e-4 if weight_decay is None else weight_decay, max_iter=max_iter,
            )  # fmt: skip
            classifier = nn.Sequential(standardize, fc)
    classifier.eval()
    with torch.no_grad():
        train_top1 = accuracy(classifier(x_train), y_train)[0]
        top1, top5 = accuracy(classifier(x_test), y_test, topk=(1, 5))
    return LinearProbeResult(top1, top5, train_top1, classifier, protocol)


# -- the paper protocol through the Trainer ------------------------------------------------------


class LinearClassifierMethod(nn.Module):
    """A Trainer method for MoCo's linear evaluation on images: frozen backbone + linear fc.

    The backbone is frozen and kept in eval mode (BN uses running statistics, as in
    ``main_lincls.py``); only ``fc`` (N(0, 0.01) init) trains. ``feature_fn(x)`` defaults to
    ``backbone.forward_features`` when present. Batches are ``(images (B, C, H, W), labels (B,))``.
    Use with :func:`moco_linear_optim_config` and 100 epochs of batch 256.
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        num_classes: int,
        feature_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.fc = _moco_linear_init(nn.Linear(feature_dim, num_classes))
        self._feature_fn = feature_fn

    def train(self, mode: bool = True) -> LinearClassifierMethod:
        super().train(mode)
        self.backbone.eval()  # frozen features: BN statistics must not move
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = self._feature_fn or _default_feature_fn(self.backbone)
        with torch.no_grad():
            feats = fn(x).flatten(1)
        return self.fc(feats)

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        top1 = (logits.detach().argmax(1) == y).float().mean() * 100.0
        return {"loss": loss, "top1": top1}

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.fc.parameters())}]


def moco_linear_optim_config() -> OptimConfig:
    """MoCo's linear-classification optimizer: SGD lr 30, momentum 0.9, wd 0, x0.1 at 60%/80%."""
    return OptimConfig(
        name="sgd",
        lr=30.0,
        momentum=0.9,
        weight_decay=0.0,
        schedule="step",
        milestones=(0.6, 0.8),
        gamma=0.1,
        warmup_steps=0,
    )


# -- metric factories (what the plugin registers; ``create_metric(name, **kw)`` calls these) --------


def knn_metric(
    k: int = 200, temperature: float = 0.07
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], dict[str, float]]:
    """``fn(train_f, train_y, test_f, test_y) -> {"top1", "top5"}`` with weighted kNN."""

    def metric(
        train_features: torch.Tensor,
        train_labels: torch.Tensor,
        test_features: torch.Tensor,
        test_labels: torch.Tensor,
    ) -> dict[str, float]:
        return knn_accuracy(
            train_features, train_labels, test_features, test_labels, k=k, temperature=temperature
        )

    return metric


def linear_probe_metric(
    protocol: str = "tiny", **options: Any
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], dict[str, float]]:
    """``fn(train_f, train_y, test_f, test_y) -> {"top1", "top5"}`` with :func:`linear_probe`."""

    def metric(
        train_features: torch.Tensor,
        train_labels: torch.Tensor,
        test_features: torch.Tensor,
        test_labels: torch.Tensor,
    ) -> dict[str, float]:
        result = linear_probe(
            train_features, train_labels, test_features, test_labels, protocol=protocol, **options
        )
        return {"top1": result.top1, "top5": result.top5}

    return metric
