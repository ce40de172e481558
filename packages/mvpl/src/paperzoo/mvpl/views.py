"""The views of MvPL (Xiong, Fan, Grauman, Feichtenhofer, ICCV 2021, arXiv 2104.00682).

One video gives three views that a single model learns from: the RGB frames (appearance),
their temporal gradients (frame differences) and the optical flow between them (motion).

- :func:`temporal_gradient`: ``x[:, t + 1] - x[:, t]`` of a clip, (C, T + 1, H, W) -> (C, T, H, W).
- :class:`FlowSettings` and :func:`farneback_flow`: dense optical flow from OpenCV's Farneback
  estimator (``cv2.calcOpticalFlowFarneback``; the paper's TV-L1 lives in opencv-contrib,
  which is not a dependency here), between frame ``i`` and frame ``i + frame_gap``.
- :class:`FlowCache`: the flow of a whole video computed once and kept on disk, keyed by the
  file (absolute path, size, modification time in ns) and the settings, so that a changed file
  or changed settings compute it again. ``stats`` counts hits, estimator runs and unreadable
  videos.
- :func:`precompute_flow`: fill the cache for a list of videos before training; an unreadable
  video is skipped, counted and named in one warning, never silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "FlowCache",
    "FlowCacheStats",
    "FlowSettings",
    "UnreadableVideo",
    "farneback_flow",
    "precompute_flow",
    "temporal_gradient",
]

log = logging.getLogger("paperzoo.mvpl")

# Bump when the cached file's layout or the computation changes: old entries are then ignored.
_CACHE_FORMAT = 1


def temporal_gradient(clip: torch.Tensor) -> torch.Tensor:
    """Frame differences of ``clip`` along time: (..., C, T + 1, H, W) -> (..., C, T, H, W),
    ``out[..., t, :, :] = clip[..., t + 1, :, :] - clip[..., t, :, :]`` (same units as ``clip``)."""
    if clip.ndim < 4 or clip.shape[-3] < 2:
        raise ValueError(
            f"temporal_gradient needs (..., C, T, H, W) with T >= 2, got {tuple(clip.shape)}"
        )
    return clip[..., 1:, :, :] - clip[..., :-1, :, :]


@dataclass(frozen=True)
class FlowSettings:
    """How the flow view is computed (``cv2.calcOpticalFlowFarneback``'s arguments).

    ``frame_gap``: the flow of frame ``i`` goes to frame ``i + frame_gap`` (the clip's sampling
    rate, so that the flow between consecutive sampled frames is read directly). ``short_side``:
    frames are resized to this short side before the estimator (0: as decoded); ``clip``: the
    flow is clipped to +-``clip`` px and stored as float16.
    """

    algorithm: str = "farneback"
    frame_gap: int = 1
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2
    short_side: int = 0
    clip: float = 20.0

    def __post_init__(self) -> None:
        if self.algorithm != "farneback":
            raise ValueError(
                f"unknown flow algorithm {self.algorithm!r}; only 'farneback' is available "
                "(OpenCV's TV-L1 needs opencv-contrib-python)"
            )
        if self.frame_gap < 1:
            raise ValueError(f"frame_gap must be >= 1, got {self.frame_gap}")

    def key(self) -> str:
        return json.dumps({"format": _CACHE_FORMAT, **dataclasses.asdict(self)}, sort_keys=True)


def _gray(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) RGB -> uint8 (T, H, W) luma (ITU-R 601, as cv2.COLOR_RGB2GRAY)."""
    import cv2

    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames])


def _resize_short(frames: np.ndarray, short_side: int) -> np.ndarray:
    import cv2

    if short_side <= 0:
        return frames
    h, w = frames.shape[1:3]
    scale = short_side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # cv2 takes (width, height)
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def farneback_flow(frames: np.ndarray, settings: FlowSettings = FlowSettings()) -> np.ndarray:
    """Dense flow of a video: uint8 (T, H, W, 3) RGB (or (T, H, W) gray) -> float32
    (T - frame_gap, H', W', 2), ``[..., 0]`` the x (column) and ``[..., 1]`` the y (row)
    displacement in pixels from frame ``i`` to frame ``i + frame_gap``, clipped to
    +-``settings.clip`` (H', W' after ``settings.short_side``)."""
    import cv2

    if frames.ndim == 4:
        frames = _gray(frames)
    frames = _resize_short(frames, settings.short_side)
    gap = settings.frame_gap
    if len(frames) <= gap:
        raise ValueError(f"a video of {len(frames)} frames has no flow at frame_gap={gap}")
    out = np.empty((len(frames) - gap, *frames.shape[1:3], 2), dtype=np.float32)
    for i in range(len(frames) - gap):
        out[i] = cv2.calcOpticalFlowFarneback(
            frames[i], frames[i + gap], None, settings.pyr_scale, settings.levels,
            settings.winsize, settings.iterations, settings.poly_n, settings.poly_sigma, 0,
        )  # fmt: skip
    return np.clip(out, -settings.clip, settings.clip, out=out)


class UnreadableVideo(RuntimeError):
    """A video whose frames cannot be read (missing, truncated, not a video)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"cannot read {path}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.reason))


def _decode_all(path: str) -> np.ndarray:
    """Every frame of ``path``: uint8 (T, H, W, 3) RGB, through paperzoo.data's decoder."""
    from paperzoo.data.video import DecodeError, read_clip

    try:
        frames, _ = read_clip(path, 0.0, 1e9)
    except (DecodeError, OSError, ValueError) as e:
        raise UnreadableVideo(path, str(getattr(e, "reason", e))) from e
    if frames.shape[0] == 0:
        raise UnreadableVideo(path, "no frames decoded")
    return frames.numpy()


@dataclass
class FlowCacheStats:
    """What a :class:`FlowCache` did: ``hits`` (read from disk), ``computed`` (estimator runs),
    ``unreadable`` (videos skipped, with ``bad`` the paths and reasons)."""

    hits: int = 0
    computed: int = 0
    unreadable: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)


class FlowCache:
    """Optical flow of whole videos, computed once per (file, settings) and kept in ``root``.

    ``get(path)`` returns float16 (T - frame_gap, H, W, 2) (x, y pixels). The entry's name is a
    hash of the video's absolute path, size and modification time (ns) and of the settings:
    editing or replacing the file, or changing any setting, misses the old entry. Entries are
    written to a temporary file and renamed, so processes (a study's cells, DataLoader workers,
    torchrun ranks) can share one cache. ``frames`` may be passed when the caller already
    decoded the video (the same frames the file gives); otherwise it is decoded here.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        settings: FlowSettings = FlowSettings(),
        *,
        estimator: Callable[[np.ndarray, FlowSettings], np.ndarray] = farneback_flow,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.estimator = estimator
        self.stats = FlowCacheStats()

    def entry(self, path: str | os.PathLike[str]) -> Path:
        """The cache file of ``path`` under the current settings (it may not exist yet)."""
        p = Path(path).resolve()
        try:
            st = p.stat()
        except OSError as e:
            raise UnreadableVideo(str(path), f"cannot stat: {e.strerror or e}") from e
        ident = json.dumps([str(p), st.st_size, st.st_mtime_ns, self.settings.key()])
        digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
        return self.root / digest[:2] / f"{digest}.npy"

    def get(self, path: str | os.PathLike[str], frames: np.ndarray | None = None) -> np.ndarray:
        entry = self.entry(path)
        if entry.is_file():
            try:
                flow = np.load(entry)
                self.stats.hits += 1
                return flow
            except (OSError, ValueError) as e:  # a torn or foreign file: compute again
                log.warning("flow cache entry %s unreadable (%s); recomputing", entry, e)
        if frames is None:
            frames = _decode_all(os.fspath(path))
        flow = self.estimator(frames, self.settings).astype(np.float16)
        self.stats.computed += 1
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, flow)
        os.replace(tmp, entry)
        return flow


def precompute_flow(
    cache: FlowCache,
    paths: Sequence[str],
    *,
    max_bad_fraction: float = 0.01,
    what: str = "videos",
) -> list[int]:
    """Fill ``cache`` for every path; returns the indices of the readable ones.

    An unreadable video is skipped and counted in ``cache.stats`` and all of them are named in
    one warning; more than ``max_bad_fraction`` of them raises, naming the first few.
    """
    good: list[int] = []
    bad: list[tuple[str, str]] = []
    for i, path in enumerate(paths):
        try:
            cache.get(path)
        except UnreadableVideo as e:
            bad.append((e.path, e.reason))
            continue
        good.append(i)
    if bad:
        cache.stats.unreadable += len(bad)
        cache.stats.bad.extend(bad)
        shown = "; ".join(f"{p} ({r})" for p, r in bad[:5]) + (
            f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
        )
        message = f"flow view: skipped {len(bad)} of {len(paths)} unreadable {what}: {shown}"
        if len(bad) > max_bad_fraction * len(paths):
            raise RuntimeError(
                f"{message}. That is more than max_bad_fraction={max_bad_fraction}: fix or "
                "remove those files (or raise video.max_bad_fraction)"
            )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return good
