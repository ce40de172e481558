"""Clip samplers: which time windows of a video become training or test clips.

A sampler is called with a video's duration (seconds) and a ``random.Random`` and returns the
clips to read, as :class:`Clip` records. The semantics follow pytorchvideo's clip samplers
(``pytorchvideo/data/clip_sampling.py``) and SlowFast's test-time sampling:

- :class:`RandomClipSampler`: one clip of ``clip_duration`` at a uniform random start (training).
- :class:`UniformClipSampler`: consecutive clips every ``stride`` seconds that fit in the video.
- :class:`ConstantClipsPerVideoSampler`: ``clips_per_video`` clips with evenly spaced starts,
  ``start_i = i * (duration - clip_duration) / clips_per_video`` (SlowFast's and pytorchvideo's
  rule), whatever the video's length: the multi-clip test protocol ("10 clips x 3 crops").
- :class:`FullVideoSampler`: the whole video as one clip.

:func:`multi_view_index` maps a flat test index to (video, clip, crop).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "Clip",
    "ClipSampler",
    "ConstantClipsPerVideoSampler",
    "FullVideoSampler",
    "RandomClipSampler",
    "UniformClipSampler",
    "multi_view_index",
    "uniform_crop_offsets",
]


@dataclass(frozen=True)
class Clip:
    """One window ``[start_sec, end_sec)`` of a video; ``index`` of ``count`` clips drawn."""

    start_sec: float
    end_sec: float
    index: int = 0
    count: int = 1


class ClipSampler:
    """Base class: ``sampler(duration, rng) -> list[Clip]``.

    ``fixed_count`` is the number of clips per video when it does not depend on the duration
    (datasets then index clips without opening every video first), else None.
    """

    fixed_count: int | None = 1

    def __call__(self, duration: float, rng: random.Random) -> list[Clip]:
        raise NotImplementedError


class RandomClipSampler(ClipSampler):
    """One clip of ``clip_duration`` s at a uniform start in ``[0, max(duration - clip, 0)]``.

    Videos shorter than the clip give ``[0, clip_duration)``, which holds all their frames.
    """

    def __init__(self, clip_duration: float) -> None:
        if clip_duration <= 0:
            raise ValueError(f"clip_duration must be positive, got {clip_duration}")
        self.clip_duration = float(clip_duration)

    def __call__(self, duration: float, rng: random.Random) -> list[Clip]:
        start = rng.uniform(0.0, max(duration - self.clip_duration, 0.0))
        return [Clip(start, start + self.clip_duration)]

    def __repr__(self) -> str:
        return f"RandomClipSampler(clip_duration={self.clip_duration})"


class UniformClipSampler(ClipSampler):
    """Clips ``[k * stride, k * stride + clip)`` for every k whose clip ends inside the video
    (at least one clip, even for a video shorter than ``clip_duration``). ``stride`` defaults
    to ``clip_duration`` (non-overlapping)."""

    fixed_count = None

    def __init__(self, clip_duration: float, stride: float | None = None) -> None:
        if clip_duration <= 0:
            raise ValueError(f"clip_duration must be positive, got {clip_duration}")
        self.clip_duration = float(clip_duration)
        self.stride = float(stride) if stride is not None else self.clip_duration
        if self.stride <= 0:
            raise ValueError(f"stride must be positive, got {stride}")

    def __call__(self, duration: float, rng: random.Random) -> list[Clip]:
        # A 1e-6 s slack keeps the last clip when float duration is a hair short of exact.
        count = max(1, int((duration - self.clip_duration + 1e-6) // self.stride) + 1)
        return [
            Clip(k * self.stride, k * self.stride + self.clip_duration, k, count)
            for k in range(count)
        ]

    def __repr__(self) -> str:
        return f"UniformClipSampler(clip_duration={self.clip_duration}, stride={self.stride})"


class ConstantClipsPerVideoSampler(ClipSampler):
    """``clips_per_video`` clips, ``start_i = i * max(duration - clip, 0) / clips_per_video``."""

    def __init__(self, clip_duration: float, clips_per_video: int) -> None:
        if clip_duration <= 0 or clips_per_video < 1:
            raise ValueError("need clip_duration > 0 and clips_per_video >= 1")
        self.clip_duration = float(clip_duration)
        self.clips_per_video = int(clips_per_video)
        self.fixed_count = self.clips_per_video

    def __call__(self, duration: float, rng: random.Random) -> list[Clip]:
        span = max(duration - self.clip_duration, 0.0) / self.clips_per_video
        n = self.clips_per_video
        return [Clip(i * span, i * span + self.clip_duration, i, n) for i in range(n)]

    def __repr__(self) -> str:
        return (
            f"ConstantClipsPerVideoSampler(clip_duration={self.clip_duration}, "
            f"clips_per_video={self.clips_per_video})"
        )


class FullVideoSampler(ClipSampler):
    """The whole video as one clip: ``[0, duration + 1 s)`` (the slack keeps the last frame
    when the header's duration is rounded down)."""

    def __call__(self, duration: float, rng: random.Random) -> list[Clip]:
        return [Clip(0.0, duration + 1.0)]

    def __repr__(self) -> str:
        return "FullVideoSampler()"


def multi_view_index(index: int, num_clips: int, num_crops: int) -> tuple[int, int, int]:
    """Flat test-view index -> ``(video, clip, crop)``; views of one video are contiguous,
    crops innermost (SlowFast's order: ``index = (video * num_clips + clip) * num_crops + crop``)."""
    video, rest = divmod(index, num_clips * num_crops)
    clip, crop = divmod(rest, num_crops)
    return video, clip, crop


def uniform_crop_offsets(
    height: int, width: int, size: int, num_crops: int
) -> list[tuple[int, int]]:
    """Top-left corners of ``num_crops`` square crops spread evenly along the longer side and
    centred on the shorter one (SlowFast's ``uniform_crop``: 3 crops = left/centre/right)."""
    if size > min(height, width):
        raise ValueError(f"crop {size} larger than the frame {height}x{width}; scale it first")
    y_c, x_c = (height - size) // 2, (width - size) // 2
    if num_crops == 1:
        return [(y_c, x_c)]
    offsets = []
    for i in range(num_crops):
        frac = i / (num_crops - 1)
        if height > width:
            offsets.append((round(frac * (height - size)), x_c))
        else:
            offsets.append((y_c, round(frac * (width - size))))
    return offsets
