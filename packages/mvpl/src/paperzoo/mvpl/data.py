"""Semi-supervised multiview training clips for MvPL.

:class:`SemiSupervisedClips` pairs every training video (as unlabelled data: FixMatch uses the
whole training set, labelled videos included) with a labelled video drawn at random, and gives
both as weakly augmented RGB clips of ``num_frames + 1`` frames (the temporal gradient needs
one more) and the flow between consecutive sampled frames, read from a
:class:`~paperzoo.mvpl.views.FlowCache` whose ``frame_gap`` is the sampling rate. The weak
augmentation is the same for all views of a clip: a random crop (or a torus shift, for the
synthetic videos that wrap around) and a horizontal flip (which negates the flow's x).

Videos come from a :class:`VideoSource`: :class:`InMemoryVideos` (decoded once, the tiny
study) or :class:`VideoFiles` (decoded per item, the paper recipe).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from paperzoo.mvpl.views import FlowCache, _decode_all, _resize_short

__all__ = ["InMemoryVideos", "RGBClips", "SemiSupervisedClips", "VideoFiles", "VideoSource"]


class VideoSource(Protocol):
    """Indexable videos: ``frames(i)`` uint8 (C, T, H, W), ``path(i)``, ``label(i)``."""

    def __len__(self) -> int: ...
    def frames(self, index: int) -> torch.Tensor: ...
    def path(self, index: int) -> str: ...
    def label(self, index: int) -> int: ...


class InMemoryVideos:
    """Decoded videos held in memory: uint8 (N, C, T, H, W), their files and labels."""

    def __init__(self, videos: torch.Tensor, paths: Sequence[str], labels: Sequence[int]) -> None:
        if not len(videos) == len(paths) == len(labels):
            raise ValueError(f"{len(videos)} videos, {len(paths)} paths, {len(labels)} labels")
        self.videos, self.paths, self.labels = videos, list(paths), [int(y) for y in labels]

    def __len__(self) -> int:
        return len(self.videos)

    def frames(self, index: int) -> torch.Tensor:
        return self.videos[index]

    def path(self, index: int) -> str:
        return self.paths[index]

    def label(self, index: int) -> int:
        return self.labels[index]

    def subset(self, indices: Sequence[int]) -> InMemoryVideos:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return InMemoryVideos(
            self.videos[idx], [self.paths[i] for i in idx], [self.labels[i] for i in idx]
        )


class VideoFiles:
    """Video files decoded in full on access, short side resized to ``short_side`` (0: as
    stored) with the same resize the flow cache uses."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], short_side: int = 0) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self.paths, self.labels, self.short_side = list(paths), [int(y) for y in labels], short_side

    def __len__(self) -> int:
        return len(self.paths)

    def frames(self, index: int) -> torch.Tensor:
        frames = _resize_short(_decode_all(self.paths[index]), self.short_side)
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)

    def path(self, index: int) -> str:
        return self.paths[index]

    def label(self, index: int) -> int:
        return self.labels[index]

    def subset(self, indices: Sequence[int]) -> VideoFiles:
        return VideoFiles(
            [self.paths[i] for i in indices], [self.labels[i] for i in indices], self.short_side
        )


class SemiSupervisedClips(Dataset):
    """Items ``(l_clip, l_flow, l_label, u_clip, u_flow, u_label)`` over ``videos``.

    Item ``i`` is video ``i`` as unlabelled data and a labelled video (one of ``labelled``,
    drawn with torch's RNG). Clips: uint8 (3, num_frames + 1, crop, crop) at frames ``s, s +
    stride, ...`` from a random start ``s``; flow: float16 (2, num_frames, crop, crop) pixels
    (x, y) from each sampled frame to the next, zeros when ``flow_cache`` is None (views
    without flow). ``crop``: a random crop of that size (None: the whole frame);
    ``max_shift``: a random torus roll of up to that many pixels (synthetic wrap-around videos);
    ``flip``: a horizontal flip with probability 0.5. All views of a clip get the same crop,
    shift and flip.
    """

    def __init__(
        self,
        videos: VideoSource,
        labelled: Sequence[int],
        *,
        num_frames: int,
        stride: int,
        flow_cache: FlowCache | None = None,
        crop: int | None = None,
        max_shift: int = 0,
        flip: bool = False,
    ) -> None:
        if len(labelled) == 0:
            raise ValueError("SemiSupervisedClips needs at least one labelled video")
        if flow_cache is not None and flow_cache.settings.frame_gap != stride:
            raise ValueError(
                f"the flow cache's frame_gap ({flow_cache.settings.frame_gap}) must equal the "
                f"clip stride ({stride}): the flow view is the flow between sampled frames"
            )
        self.videos, self.labelled = videos, list(labelled)
        self.num_frames, self.stride = num_frames, stride
        self.flow_cache = flow_cache
        self.crop, self.max_shift, self.flip = crop, max_shift, flip

    def __len__(self) -> int:
        return len(self.videos)

    def _views(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames = self.videos.frames(index)  # (C, T_all, H, W) uint8
        _, t_all, h, w = frames.shape
        span = self.num_frames * self.stride + 1  # num_frames + 1 sampled frames
        if span > t_all:
            raise ValueError(
                f"{self.videos.path(index)} has {t_all} frames; a clip of {self.num_frames} + 1 "
                f"frames every {self.stride} needs {span}"
            )
        start = int(torch.randint(0, t_all - span + 1, ()))
        idx = torch.arange(self.num_frames + 1) * self.stride + start
        clip = frames[:, idx]
        if self.flow_cache is not None:
            fl = self.flow_cache.get(self.videos.path(index))
            if fl.shape[1:3] != (h, w):
                raise ValueError(
                    f"cached flow of {self.videos.path(index)} is {fl.shape[1:3]}, frames are "
                    f"{(h, w)}: the flow's short_side must match the frames'"
                )
            flow = torch.from_numpy(np.ascontiguousarray(fl[idx[:-1].numpy()])).permute(3, 0, 1, 2)
        else:
            flow = torch.zeros(2, self.num_frames, h, w, dtype=torch.float16)
        if self.crop is not None and (self.crop < h or self.crop < w):
            y = int(torch.randint(0, h - self.crop + 1, ()))
            x = int(torch.randint(0, w - self.crop + 1, ()))
            clip = clip[..., y : y + self.crop, x : x + self.crop]
            flow = flow[..., y : y + self.crop, x : x + self.crop]
        if self.max_shift > 0:
            dy, dx = (int(v) for v in torch.randint(-self.max_shift, self.max_shift + 1, (2,)))
            clip = torch.roll(clip, (dy, dx), dims=(-2, -1))
            flow = torch.roll(flow, (dy, dx), dims=(-2, -1))
        if self.flip and bool(torch.rand(()) < 0.5):
            clip = clip.flip(-1)
            flow = flow.flip(-1)
            flow[0] = -flow[0]  # x displacement changes sign under a horizontal flip
        return clip.contiguous(), flow.contiguous()

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        u_clip, u_flow = self._views(index)
        j = self.labelled[int(torch.randint(0, len(self.labelled), ()))]
        l_clip, l_flow = self._views(j)
        return (
            l_clip, l_flow, self.videos.label(j), u_clip, u_flow, self.videos.label(index),
        )  # fmt: skip


class RGBClips(Dataset):
    """``(normalised RGB clip (3, T, H, W), label)`` of a :class:`SemiSupervisedClips`'s
    unlabelled videos: what precise BN re-estimates the RGB statistics on."""

    def __init__(self, clips: SemiSupervisedClips, mean: Sequence[float], std: Sequence[float]):
        self.clips = clips
        self.mean = torch.tensor(mean).view(3, 1, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1, 1)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip, _ = self.clips._views(index)
        x = (clip[:, :-1].float() / 255.0 - self.mean) / self.std
        return x, self.clips.videos.label(index)
