"""TaCo's temporal transformations and the two-clip views of a video.

Each transformation is both an augmentation (it changes the clip that MoCo contrasts) and a
prediction task (the clip's transformation label is the target of its head in
:class:`~paperzoo.taco.model.TaCo`). The set is the paper's four (arXiv:2011.13046; see the
README for which parameters come from where):

- ``rotation``: every frame rotated by k x 90 degrees, k in {0, 1, 2, 3}; 4 classes.
- ``shuffle``: the frame order permuted (a uniformly drawn non-identity permutation) or not; 2.
- ``reverse``: the frame order reversed or not; 2.
- ``speed``: the clip sampled every s-th source frame, s in ``speeds`` (default 1, 2, 4,
  relative to the base sampling rate); one class per speed.

Each enabled transformation draws its label independently per clip, identity included (our
choice), so a clip carries one label per task. Order of application: speed (frame sampling),
shuffle, reverse, rotation.

The spatial augmentation of every arm is torchvision's ``transforms.v2`` on the whole clip (one
draw per clip): RandomResizedCrop and brightness/contrast ColorJitter. The paper recipe adds a
horizontal flip; moving digits cannot (a flip swaps left and right, i.e. the label).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = [
    "TRANSFORMATIONS",
    "TaCoClips",
    "TaCoViews",
    "TemporalTransforms",
    "apply_temporal",
    "sample_temporal",
    "task_classes",
]

TRANSFORMATIONS = ("rotation", "shuffle", "reverse", "speed")


def task_classes(names: Sequence[str], speeds: Sequence[int] = (1, 2, 4)) -> dict[str, int]:
    """The number of classes of each named transformation's head."""
    unknown = [n for n in names if n not in TRANSFORMATIONS]
    if unknown:
        raise ValueError(f"unknown temporal transformation(s) {unknown}; known: {TRANSFORMATIONS}")
    sizes = {"rotation": 4, "shuffle": 2, "reverse": 2, "speed": len(speeds)}
    return {n: sizes[n] for n in names}


@dataclass(frozen=True)
class TemporalTransforms:
    """Which transformations are drawn, and their parameters.

    ``names`` empty: no temporal transformation (plain video MoCo), every clip sampled at
    ``speeds[0]``. ``num_frames`` frames per clip, every ``base_stride * s`` source frames.
    """

    names: tuple[str, ...] = TRANSFORMATIONS
    num_frames: int = 16
    base_stride: int = 1
    speeds: tuple[int, ...] = (1, 2, 4)

    def __post_init__(self) -> None:
        task_classes(self.names, self.speeds)  # validates the names
        if not self.speeds or min(self.speeds) < 1 or self.num_frames < 2 or self.base_stride < 1:
            raise ValueError(
                f"need speeds >= 1, num_frames >= 2 and base_stride >= 1, got {self.speeds}, "
                f"{self.num_frames}, {self.base_stride}"
            )

    @property
    def tasks(self) -> dict[str, int]:
        return task_classes(self.names, self.speeds)

    def span(self) -> int:
        """Source frames a clip needs at the largest speed drawn."""
        fastest = max(self.speeds) if "speed" in self.names else self.speeds[0]
        return (self.num_frames - 1) * self.base_stride * fastest + 1


def sample_temporal(spec: TemporalTransforms, generator: torch.Generator | None = None) -> dict:
    """One clip's transformation labels, {name: class index}, drawn uniformly per task."""
    return {name: int(torch.randint(n, (), generator=generator)) for name, n in spec.tasks.items()}


def apply_temporal(
    video: torch.Tensor,
    labels: Mapping[str, int],
    spec: TemporalTransforms,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The clip of ``video`` (T, C, H, W) that ``labels`` describe, (num_frames, C, H, W).

    The start is uniform over the positions where the clip fits; a video shorter than the clip
    span repeats its last frame (as PySlowFast's clip sampling clamps indices).
    """
    stride = spec.base_stride * spec.speeds[labels.get("speed", 0)]
    span = (spec.num_frames - 1) * stride + 1
    last_start = max(video.shape[0] - span, 0)
    start = int(torch.randint(last_start + 1, (), generator=generator))
    index = (start + stride * torch.arange(spec.num_frames)).clamp_max(video.shape[0] - 1)
    if labels.get("shuffle", 0):
        # A uniform non-identity permutation: redraw the (1 / T!) identity.
        while True:
            perm = torch.randperm(spec.num_frames, generator=generator)
            if not torch.equal(perm, torch.arange(spec.num_frames)):
                break
        index = index[perm]
    if labels.get("reverse", 0):
        index = index.flip(0)
    clip = video[index]
    k = labels.get("rotation", 0)
    return torch.rot90(clip, k, dims=(-2, -1)) if k else clip


class _SpatialAugment:
    """One RandomResizedCrop + ColorJitter draw per clip (torchvision transforms.v2), then
    float normalisation to (C, T, H, W)."""

    def __init__(
        self,
        size: int,
        scale: tuple[float, float],
        jitter: float,
        mean: Sequence[float],
        std: Sequence[float],
        flip: bool,
    ) -> None:
        from torchvision.transforms import v2

        ops: list[Any] = [v2.RandomResizedCrop(size, scale=scale, antialias=True)]
        if flip:
            ops.append(v2.RandomHorizontalFlip())
        if jitter > 0:
            ops.append(v2.ColorJitter(brightness=jitter, contrast=jitter))
        ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
        self.transform = v2.Compose(ops)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        from torchvision import tv_tensors

        out = self.transform(tv_tensors.Video(clip))  # (T, C, H, W), one draw for all frames
        return out.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()


class TaCoViews:
    """A video's two MoCo views and the query's transformation labels.

    Called on a uint8 video (T, C, H, W) (``tv_tensors.Video`` from the data layer, or a plain
    tensor): each view draws its own start, temporal transformations and spatial augmentation.
    Returns ``([query (C, T, H, W), key (C, T, H, W)], {task: label of the query})``.
    """

    def __init__(
        self,
        spec: TemporalTransforms,
        *,
        size: int,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        jitter: float = 0.4,
        mean: Sequence[float] = (0.45, 0.45, 0.45),
        std: Sequence[float] = (0.225, 0.225, 0.225),
        flip: bool = False,
    ) -> None:
        self.spec = spec
        self.spatial = _SpatialAugment(size, crop_scale, jitter, mean, std, flip)

    def view(self, video: torch.Tensor) -> tuple[torch.Tensor, dict[str, int]]:
        labels = sample_temporal(self.spec)
        return self.spatial(apply_temporal(video, labels, self.spec)), labels

    def __call__(self, video: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, int]]:
        video = video.as_subclass(torch.Tensor)
        query, labels = self.view(video)
        key, _ = self.view(video)
        return [query, key], labels


class TaCoClips(Dataset):
    """Pre-training items ``([query, key], query labels)`` of videos held in memory.

    ``videos``: uint8 (N, C, T, H, W), e.g. :class:`paperzoo.data.synthetic.DecodedVideos`'
    ``videos``. Labels of the videos are not used.
    """

    def __init__(self, videos: torch.Tensor, views: TaCoViews) -> None:
        if videos.dtype != torch.uint8 or videos.ndim != 5:
            raise ValueError(f"videos must be uint8 (N, C, T, H, W), got {tuple(videos.shape)}")
        self.videos, self.views = videos, views

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> tuple[list[torch.Tensor], dict[str, int]]:
        return self.views(self.videos[index].permute(1, 0, 2, 3))
