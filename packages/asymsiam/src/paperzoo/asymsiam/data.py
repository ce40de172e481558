"""The views of the asymmetry study: what the source (query) and target (key) encoders see.

Follows the official ``main_moco.py`` and ``moco/loader.py`` (facebookresearch/asym-siam).
One image gives a dict of lists (the default collate keeps its shape)::

    {"source": [q], "source_small": [s_1, ..., s_6], "target": [k] or [k_1, k_2]}

- baseline: ``q`` and ``k`` are two draws of MoCo v2's augmentation (RandomResizedCrop scale
  (0.2, 1), colour jitter p=0.8, grayscale 0.2, blur p=0.5, flip).
- **MultiCrop** (source): 6 extra crops, RandomResizedCrop(96, scale=(0.05, 0.14)) with the same
  colour/blur/flip; the main crops' scale becomes (0.14, 1) for source *and* target (the
  official code changes the shared augmentation).
- **ScaleMix** (source): ``q`` is two source draws mixed CutMix-style (:func:`scalemix`).
- **AsymAug**: the source adds RandAugment ``rand-m10-n2-mstd0.5`` (timm's, as the official
  code, with ``translate_const=100``) after the flip; the target gets only
  RandomResizedCrop(224) (torchvision's default scale (0.08, 1)) and a flip.
- **MeanEnc** (target): two independent target draws; the method averages their projections.
- **AsymBN** changes no view (it is the target projector's BatchNorm, see the method).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.functional import pil_to_tensor, to_pil_image

__all__ = ["AsymCrops", "TimmRandAugment", "asym_views", "scalemix"]


def scalemix(view1: torch.Tensor, view2: torch.Tensor, generator: torch.Generator | None = None):
    """ScaleMix: paste a random box of ``view2`` into ``view1``; (C, H, W) -> (C, H, W).

    As the official ``moco/loader.py``: lam ~ U(0, 1), the box's sides are
    ``int(side * sqrt(1 - lam))``, its centre is uniform over the image, and it is clipped to
    the image (so a box near a border is smaller). The official code indexes the rows with the
    box's x-range and the columns with its y-range, which is the same thing on its square 224
    crops; here rows take the y-range. Returns a new tensor; the inputs are unchanged.
    """
    _, h, w = view1.shape
    lam = float(torch.rand((), generator=generator))
    cut = math.sqrt(1.0 - lam)
    cut_w, cut_h = int(w * cut), int(h * cut)
    cx = int(torch.randint(w, (), generator=generator))
    cy = int(torch.randint(h, (), generator=generator))
    x1, x2 = min(max(cx - cut_w // 2, 0), w), min(max(cx + cut_w // 2, 0), w)
    y1, y2 = min(max(cy - cut_h // 2, 0), h), min(max(cy + cut_h // 2, 0), h)
    out = view1.clone()
    out[:, y1:y2, x1:x2] = view2[:, y1:y2, x1:x2]
    return out


class TimmRandAugment:
    """timm's RandAugment (``rand_augment_transform``) on a uint8 (C, H, W) image tensor.

    timm's ops work on PIL images; this converts there and back so the op sits inside the
    torchvision v2 pipeline at the place the official code puts it (after the flip).
    """

    def __init__(self, config: str = "rand-m10-n2-mstd0.5", translate_const: int = 100) -> None:
        from timm.data.auto_augment import rand_augment_transform

        self.config = config
        self.op = rand_augment_transform(config, {"translate_const": translate_const})

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        out = pil_to_tensor(self.op(to_pil_image(image)))
        return tv_tensors.Image(out) if isinstance(image, tv_tensors.Image) else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


class AsymCrops:
    """One image -> ``{"source": [...], "source_small": [...], "target": [...]}`` (see module)."""

    def __init__(
        self,
        source: Callable[[Any], torch.Tensor],
        target: Callable[[Any], torch.Tensor],
        *,
        small: Callable[[Any], torch.Tensor] | None = None,
        num_small: int = 0,
        scalemix: bool = False,
        num_target: int = 1,
    ) -> None:
        if num_small and small is None:
            raise ValueError("num_small > 0 needs a `small` transform")
        if num_target < 1:
            raise ValueError(f"num_target must be >= 1, got {num_target}")
        self.source, self.target, self.small = source, target, small
        self.num_small, self.use_scalemix, self.num_target = num_small, scalemix, num_target

    def __call__(self, image: Any) -> dict[str, list[torch.Tensor]]:
        q = self.source(image)
        if self.use_scalemix:
            q = scalemix(q, self.source(image))
        smalls = [self.small(image) for _ in range(self.num_small)] if self.small else []
        return {
            "source": [q],
            "source_small": smalls,
            "target": [self.target(image) for _ in range(self.num_target)],
        }


def asym_views(cfg: Any, mean: Sequence[float], std: Sequence[float]) -> AsymCrops:
    """The views of an asymsiam recipe config (``cfg.asym`` switches, ``cfg.moco`` aug)."""
    from paperzoo.data.images import moco_v2_augmentation, to_normalized_float

    a, size = cfg.asym, cfg.data.image_size
    crop_min = a.multicrop_crop_min_scale if a.multicrop else cfg.moco.crop_min_scale
    scale = (crop_min, 1.0)
    base = moco_v2_augmentation(size=size, blur=cfg.moco.blur, mean=mean, std=std, scale=scale)
    source = base
    target = base
    if a.asym_aug:
        source = moco_v2_augmentation(
            size=size, blur=cfg.moco.blur, mean=mean, std=std, scale=scale,
            extra=[TimmRandAugment(a.randaugment, a.randaugment_translate_const)],
        )  # fmt: skip
        target = v2.Compose(
            [
                v2.RGB(),
                v2.RandomResizedCrop(size, scale=(a.weak_target_min_scale, 1.0), antialias=True),
                v2.RandomHorizontalFlip(),
                *to_normalized_float(mean, std),
            ]
        )
    small = None
    if a.multicrop:
        small = moco_v2_augmentation(
            size=a.small_size, blur=cfg.moco.blur, mean=mean, std=std,
            scale=tuple(a.small_crop_scale),
        )  # fmt: skip
    return AsymCrops(
        source, target, small=small, num_small=a.num_small_crops if a.multicrop else 0,
        scalemix=a.scalemix, num_target=2 if a.mean_enc else 1,
    )  # fmt: skip
