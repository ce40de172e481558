"""Video transforms on (C, T, H, W) or (T, C, H, W) tensors, composable with torchvision v2.

torchvision's transforms v2 already treat a ``tv_tensors.Video`` (T, C, H, W) as one sample:
crops, flips, resizes, colour jitter, RandAugment, AugMix and RandomErasing draw their
parameters once and apply them to every frame, which is what video augmentation needs. This
module adds what v2 lacks, following pytorchvideo's transforms (Fan et al. 2021,
arXiv:2111.09887) and SlowFast's (Feichtenhofer et al. 2019, arXiv:1812.03982):

- uniform temporal subsampling, short-side scaling (fixed or random), uniform spatial crops
  (multi-view test), layout changes and per-channel normalisation for either layout;
- RandAugment / AugMix / RandomErasing wrappers that accept the (C, T, H, W) layout too;
- batch-level Mixup/CutMix with label smoothing (timm's recipe, used by MViT and X3D training).

Each transform is a plain callable on a tensor, so it drops into ``v2.Compose`` next to
torchvision's own, in video and image pipelines alike (a (C, H, W) image is a 1-frame video
for the spatial ones). Layout is ``"CTHW"`` (pytorchvideo models' input) or ``"TCHW"``
(torchvision's ``Video``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = [
    "MixupCutmix",
    "Normalize",
    "RandomShortSideScale",
    "ShortSideScale",
    "ToLayout",
    "UniformCrop",
    "UniformTemporalSubsample",
    "VideoAugMix",
    "VideoRandAugment",
    "VideoRandomErasing",
    "normalize",
    "short_side_scale",
    "uniform_crop",
    "uniform_temporal_subsample",
    "video_eval_transform",
    "video_train_transform",
]

_LAYOUTS = ("CTHW", "TCHW")


def _check_layout(layout: str) -> str:
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be 'CTHW' or 'TCHW', got {layout!r}")
    return layout


def _time_dim(x: torch.Tensor, layout: str) -> int:
    return x.ndim - 3 if layout == "CTHW" else x.ndim - 4


def _channel_dim(x: torch.Tensor, layout: str) -> int:
    return x.ndim - 4 if layout == "CTHW" else x.ndim - 3


def _as_tchw(x: torch.Tensor, layout: str) -> torch.Tensor:
    return x.transpose(-4, -3) if layout == "CTHW" else x


# -- temporal and spatial geometry -----------------------------------------------------------


def uniform_temporal_subsample(
    x: torch.Tensor, num_samples: int, temporal_dim: int = -3
) -> torch.Tensor:
    """Keep ``num_samples`` frames at ``torch.linspace(0, T - 1, num_samples).long()``
    (pytorchvideo's rule; frames repeat when T < num_samples). ``temporal_dim=-3`` is T of
    (C, T, H, W); use -4 for (T, C, H, W)."""
    t = x.shape[temporal_dim]
    idx = torch.linspace(0, t - 1, num_samples).long().to(x.device)
    return torch.index_select(x, temporal_dim, idx)


class UniformTemporalSubsample:
    """:func:`uniform_temporal_subsample` on a video in ``layout``."""

    def __init__(self, num_samples: int, layout: str = "CTHW") -> None:
        self.num_samples = num_samples
        self.layout = _check_layout(layout)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = uniform_temporal_subsample(x, self.num_samples, _time_dim(x, self.layout))
        return tv_tensors.wrap(out, like=x) if isinstance(x, tv_tensors.Video) else out

    def __repr__(self) -> str:
        return f"UniformTemporalSubsample({self.num_samples}, layout={self.layout!r})"


def short_side_scale(x: torch.Tensor, size: int, interpolation: str = "bilinear") -> torch.Tensor:
    """Resize (..., H, W) so the shorter side is ``size``, keeping the aspect ratio (the longer
    side is ``floor(size * long / short)``, as pytorchvideo). Works for any layout, uint8 or
    float; every frame gets the same resize."""
    h, w = x.shape[-2:]
    if w < h:
        new_h, new_w = math.floor(h / w * size), size
    else:
        new_h, new_w = size, math.floor(w / h * size)
    mode = v2.InterpolationMode(interpolation)
    return v2.functional.resize(x, [new_h, new_w], interpolation=mode, antialias=True)


class ShortSideScale:
    """:func:`short_side_scale` to a fixed ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return short_side_scale(x, self.size)

    def __repr__(self) -> str:
        return f"ShortSideScale({self.size})"


class RandomShortSideScale:
    """Short side to a uniform random integer in ``[min_size, max_size]`` (SlowFast's scale
    jitter, e.g. 256-320 for 224 crops; X3D-XS: 182-228 for 160 crops)."""

    def __init__(self, min_size: int, max_size: int) -> None:
        if min_size > max_size:
            raise ValueError(f"min_size {min_size} > max_size {max_size}")
        self.min_size, self.max_size = min_size, max_size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        size = int(torch.randint(self.min_size, self.max_size + 1, ()).item())
        return short_side_scale(x, size)

    def __repr__(self) -> str:
        return f"RandomShortSideScale({self.min_size}, {self.max_size})"


def uniform_crop(x: torch.Tensor, size: int, index: int, num_crops: int = 3) -> torch.Tensor:
    """Crop ``index`` of ``num_crops`` square ``size`` crops spread along the longer side of
    (..., H, W) (SlowFast's test crops: 0 = left/top, 1 = centre, 2 = right/bottom)."""
    from paperzoo.data.samplers import uniform_crop_offsets

    h, w = x.shape[-2:]
    top, left = uniform_crop_offsets(h, w, size, num_crops)[index]
    return x[..., top : top + size, left : left + size]


class UniformCrop:
    """:func:`uniform_crop` with a fixed crop ``index``."""

    def __init__(self, size: int, index: int = 1, num_crops: int = 3) -> None:
        self.size, self.index, self.num_crops = size, index, num_crops

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return uniform_crop(x, self.size, self.index, self.num_crops)


class ToLayout:
    """Convert between (T, C, H, W) and (C, T, H, W) (returns a plain tensor)."""

    def __init__(self, src: str, dst: str) -> None:
        self.src, self.dst = _check_layout(src), _check_layout(dst)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.as_subclass(torch.Tensor) if isinstance(x, tv_tensors.TVTensor) else x
        return x if self.src == self.dst else x.transpose(-4, -3).contiguous()

    def __repr__(self) -> str:
        return f"ToLayout({self.src!r}, {self.dst!r})"


def normalize(
    x: torch.Tensor, mean: Sequence[float], std: Sequence[float], layout: str = "CTHW"
) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a float video in ``layout`` (a (C, H, W) image is
    taken as channel-first)."""
    if not x.is_floating_point():
        raise TypeError(
            "normalize expects a float video; convert with v2.ToDtype(torch.float32, scale=True)"
        )
    cdim = 0 if x.ndim == 3 else _channel_dim(x, _check_layout(layout))
    shape = [1] * x.ndim
    shape[cdim] = -1
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(shape)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).reshape(shape)
    return (x - m) / s


class Normalize:
    """:func:`normalize` as a transform."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], layout: str = "CTHW") -> None:
        self.mean, self.std, self.layout = tuple(mean), tuple(std), _check_layout(layout)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, self.mean, self.std, self.layout)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std}, layout={self.layout!r})"


# -- torchvision v2 augmentations, applied once per video ------------------------------------


class _PerVideo:
    """Run a torchvision v2 transform on a whole video as ``tv_tensors.Video`` (T, C, H, W),
    so its random parameters are drawn once and shared by every frame."""

    def __init__(self, transform: Callable[[Any], Any], layout: str) -> None:
        self.transform = transform
        self.layout = _check_layout(layout)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        plain = x.as_subclass(torch.Tensor) if isinstance(x, tv_tensors.TVTensor) else x
        if plain.ndim == 3:  # an image (C, H, W): the transform applies as it is
            return self.transform(x)
        video = tv_tensors.Video(_as_tchw(plain, self.layout))
        out = self.transform(video).as_subclass(torch.Tensor)
        out = out.transpose(-4, -3) if self.layout == "CTHW" else out
        return tv_tensors.wrap(out, like=x) if isinstance(x, tv_tensors.Video) else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transform!r}, layout={self.layout!r})"


class VideoRandAugment(_PerVideo):
    """RandAugment (Cubuk et al. 2019, arXiv:1909.13719) with one draw of ops and magnitudes
    per video, on uint8 video in ``layout``; torchvision's ``v2.RandAugment`` underneath."""

    def __init__(
        self, num_ops: int = 2, magnitude: int = 9, layout: str = "CTHW", **kwargs: Any
    ) -> None:
        super().__init__(v2.RandAugment(num_ops=num_ops, magnitude=magnitude, **kwargs), layout)


class VideoAugMix(_PerVideo):
    """AugMix (Hendrycks et al. 2020, arXiv:1912.02781) with one draw of chains and mixing
    weights per video; torchvision's ``v2.AugMix`` (which treats a Video as one sample)."""

    def __init__(
        self, severity: int = 3, mixture_width: int = 3, layout: str = "CTHW", **kwargs: Any
    ) -> None:
        super().__init__(
            v2.AugMix(severity=severity, mixture_width=mixture_width, **kwargs), layout
        )


class VideoRandomErasing(_PerVideo):
    """Random erasing (Zhong et al. 2020, arXiv:1708.04896) of the same box in every frame
    (a "cube", as SlowFast/MViT use); torchvision's ``v2.RandomErasing`` on float video."""

    def __init__(
        self,
        p: float = 0.25,
        scale: tuple[float, float] = (0.02, 1 / 3),
        ratio: tuple[float, float] = (0.3, 3.3),
        value: float | str = 0.0,
        layout: str = "CTHW",
    ) -> None:
        super().__init__(v2.RandomErasing(p=p, scale=scale, ratio=ratio, value=value), layout)


# -- batch mixing ----------------------------------------------------------------------------


class MixupCutmix:
    """Mixup (Zhang et al. 2018) / CutMix (Yun et al. 2019) on a batch, with label smoothing.

    ``__call__(x, y)``: ``x`` (B, ..., H, W) float (images or videos of either layout: the
    CutMix box covers the last two dims of every frame), ``y`` int64 (B,). Returns ``(x_mixed,
    soft_targets)`` with soft targets (B, num_classes) summing to 1. Pairs are the batch and
    its reverse, one lambda per batch, as in timm's ``Mixup(mode="batch")``. With both alphas
    > 0, CutMix is chosen with probability ``switch_prob``; ``prob`` is the chance of mixing at
    all. torchvision's ``v2.MixUp``/``v2.CutMix`` have no label smoothing, hence this class.
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
    ) -> None:
        if mixup_alpha <= 0 and cutmix_alpha <= 0:
            raise ValueError("at least one of mixup_alpha and cutmix_alpha must be > 0")
        self.num_classes = num_classes
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob = prob, switch_prob
        self.label_smoothing = label_smoothing

    def smooth_one_hot(self, y: torch.Tensor) -> torch.Tensor:
        off = self.label_smoothing / self.num_classes
        out = torch.full((len(y), self.num_classes), off, device=y.device)
        return out.scatter_(1, y.view(-1, 1), 1.0 - self.label_smoothing + off)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(x) % 2:
            raise ValueError(f"MixupCutmix needs an even batch size, got {len(x)}")
        lam = 1.0
        x = x.clone()
        if random.random() < self.prob:
            use_cutmix = self.cutmix_alpha > 0 and (
                self.mixup_alpha <= 0 or random.random() < self.switch_prob
            )
            if use_cutmix:
                lam = random.betavariate(self.cutmix_alpha, self.cutmix_alpha)
                h, w = x.shape[-2:]
                cut = math.sqrt(1.0 - lam)
                ch, cw = int(h * cut), int(w * cut)
                cy, cx = random.randrange(h), random.randrange(w)
                y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
                x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
                x[..., y0:y1, x0:x1] = x.flip(0)[..., y0:y1, x0:x1]
                lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)  # the area actually pasted
            else:
                lam = random.betavariate(self.mixup_alpha, self.mixup_alpha)
                x = x * lam + x.flip(0) * (1.0 - lam)
        t = self.smooth_one_hot(y)
        return x, t * lam + t.flip(0) * (1.0 - lam)


# -- ready pipelines -------------------------------------------------------------------------


def video_train_transform(
    num_frames: int,
    crop_size: int = 224,
    min_scale: int = 256,
    max_scale: int = 320,
    mean: Sequence[float] = (0.45, 0.45, 0.45),
    std: Sequence[float] = (0.225, 0.225, 0.225),
    rand_augment: bool = False,
    random_erasing: float = 0.0,
) -> v2.Compose:
    """SlowFast/X3D training pipeline on a uint8 ``tv_tensors.Video`` (T, C, H, W) (what
    :class:`~paperzoo.data.datasets.LabeledVideoDataset` hands its transform): subsample to
    ``num_frames``, random short side in [min_scale, max_scale], random ``crop_size`` crop,
    flip, optional RandAugment (m9, n2), float, normalise (Kinetics mean/std), optional
    random erasing. Returns float (C, T, crop, crop)."""
    ops: list[Any] = [
        UniformTemporalSubsample(num_frames, layout="TCHW"),
        RandomShortSideScale(min_scale, max_scale),
        v2.RandomCrop(crop_size),
        v2.RandomHorizontalFlip(),
    ]
    if rand_augment:
        ops.append(VideoRandAugment(2, 9, layout="TCHW"))
    ops += [v2.ToDtype(torch.float32, scale=True), Normalize(mean, std, layout="TCHW")]
    if random_erasing > 0:
        ops.append(VideoRandomErasing(p=random_erasing, layout="TCHW"))
    ops.append(ToLayout("TCHW", "CTHW"))
    return v2.Compose(ops)


def video_eval_transform(
    num_frames: int,
    crop_size: int = 224,
    short_side: int = 256,
    mean: Sequence[float] = (0.45, 0.45, 0.45),
    std: Sequence[float] = (0.225, 0.225, 0.225),
    center_crop: bool = True,
) -> v2.Compose:
    """Test pipeline: subsample, short side to ``short_side``, centre crop (or none, when the
    dataset takes several uniform crops itself), float, normalise; (C, T, H, W) out."""
    ops: list[Any] = [
        UniformTemporalSubsample(num_frames, layout="TCHW"),
        ShortSideScale(short_side),
    ]
    if center_crop:
        ops.append(v2.CenterCrop(crop_size))
    ops += [
        v2.ToDtype(torch.float32, scale=True),
        Normalize(mean, std, layout="TCHW"),
        ToLayout("TCHW", "CTHW"),
    ]
    return v2.Compose(ops)
