"""Audio-video data for MAViL: an mp4 muxer with an audio track, the tiny audio-visual digits,
and the clip dataset of every recipe (AudioSet, VGGSound, the digits) on the shared readers.

- :func:`write_av_mp4`: h264 video + AAC audio in one mp4 (PyAV). The shared generator's
  encoder (``paperzoo.data.synthetic._encode_mp4``) is private and writes video only: this is
  the small muxer the clips with sound need. Decode it back with
  :func:`paperzoo.data.video.read_av_clip` / :func:`paperzoo.data.audio.read_audio`.
- :func:`write_av_digits`: the tiny study's clips. A real MNIST digit moves left or right on a
  32 px torus (:func:`paperzoo.data.synthetic.render_moving_digit`); the sound track is the
  digit's DTMF tone pair (a random onset, length and small detuning) in white noise. The label
  is ``digit x direction`` (20 classes): the digit is in both modalities, the direction only in
  the video, so an audio-only classifier tops out at 50%. Each split is listed in AudioSet's
  format (``{split}_segments.csv`` + ``class_labels_indices.csv``), read back with the shared
  :func:`paperzoo.data.datasets.read_audioset_csv`.
- :class:`AVClipDataset`: records -> ``(fbank (1, F, 128), video (3, T, H, W), target)``,
  AudioMAE's front-end (:func:`paperzoo.data.audio.audiomae_fbank`), frames resized, centre
  cropped and normalised; ``target`` a class index, or multi-hot for multi-label records.
  :meth:`AVClipDataset.materialize` decodes every clip once into memory (the tiny study).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from paperzoo.data.audio import audiomae_fbank
from paperzoo.data.datasets import VideoRecord, read_audioset_csv
from paperzoo.data.video import read_av_clip

__all__ = [
    "DTMF",
    "AVClipDataset",
    "av_digits_splits",
    "dtmf_tone",
    "write_av_digits",
    "write_av_mp4",
]

# Keypad frequencies (Hz) of each digit: (row, column), the ITU-T Q.23 pairs.
DTMF: dict[int, tuple[float, float]] = {
    1: (697, 1209), 2: (697, 1336), 3: (697, 1477), 4: (770, 1209), 5: (770, 1336),
    6: (770, 1477), 7: (852, 1209), 8: (852, 1336), 9: (852, 1477), 0: (941, 1336),
}  # fmt: skip
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def write_av_mp4(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: int,
    audio: np.ndarray,
    sample_rate: int = 16_000,
    *,
    crf: int = 18,
) -> None:
    """Write ``frames`` uint8 (T, H, W, 3) as h264 and ``audio`` float (samples,) in [-1, 1]
    as mono AAC at ``sample_rate`` into one mp4 (even H and W). One encoder thread, so a seed
    gives the same bytes."""
    import av

    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0).reshape(1, -1)
    with av.open(os.fspath(path), mode="w") as container:
        vs = container.add_stream("libx264", rate=fps)
        vs.width, vs.height = frames.shape[2], frames.shape[1]
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": str(crf), "preset": "veryfast", "threads": "1",
                      "x264-params": "mbtree=0"}  # fmt: skip
        aus = container.add_stream("aac", rate=sample_rate)
        aus.layout = "mono"
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            for packet in vs.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        step = 1024  # AAC's frame size
        for i in range(0, audio.shape[1], step):
            chunk = np.ascontiguousarray(audio[:, i : i + step])
            aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            aframe.sample_rate = sample_rate
            aframe.pts = i
            for packet in aus.encode(aframe):
                container.mux(packet)
        for packet in aus.encode():
            container.mux(packet)


def dtmf_tone(
    digit: int,
    seconds: float,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    noise: float = 0.3,
    amplitude: float = 0.25,
) -> np.ndarray:
    """The DTMF pair of ``digit`` over a random 40-80% of ``seconds`` (random onset, +-2%
    detuning of each tone) in white noise of std ``noise``: float32 (samples,)."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    low, high = (f * rng.uniform(0.98, 1.02) for f in DTMF[digit])
    length = int(n * rng.uniform(0.4, 0.8))
    onset = int(rng.integers(0, n - length + 1))
    env = np.zeros(n)
    env[onset : onset + length] = np.hanning(length)
    tone = amplitude * env * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    return (tone + noise * rng.standard_normal(n)).astype(np.float32)


def _direction_names() -> tuple[str, str]:
    return ("left", "right")


def write_av_digits(
    out_dir: str | os.PathLike[str],
    *,
    clips_per_class: int = 24,
    val_fraction: float = 0.25,
    test_fraction: float = 0.25,
    size: int = 32,
    num_frames: int = 8,
    fps: int = 8,
    seconds: float = 1.0,
    sample_rate: int = 16_000,
    noise: float = 0.3,
    speed: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Write the audio-visual digits as mp4 files with sound under ``out_dir/videos`` and
    AudioSet-format lists ``{train,val,test}_segments.csv`` plus ``class_labels_indices.csv``;
    ``meta.json`` (written last) records the arguments. Val and test draw their digit images
    from MNIST images that train never uses. Returns the metadata."""
    from paperzoo.data.images import load_mnist_sample, stratified_split
    from paperzoo.data.synthetic import render_moving_digit

    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    images, labels = load_mnist_sample()
    train_pool, held = stratified_split(labels, 0.4, seed)
    val_half, test_half = stratified_split(labels[held], 0.5, seed)
    pools = {"train": train_pool, "val": held[val_half], "test": held[test_half]}
    n_val = max(1, round(clips_per_class * val_fraction))
    n_test = max(1, round(clips_per_class * test_fraction))
    counts = {"val": n_val, "test": n_test, "train": clips_per_class - n_val - n_test}
    if counts["train"] < 1:
        raise ValueError(f"{clips_per_class} clips per class leave no training clip")
    rng = np.random.default_rng(seed)
    names = _direction_names()
    classes = [f"digit {d} moving {names[k]}" for d in range(10) for k in range(2)]
    mids = [f"/m/av{c:02d}" for c in range(len(classes))]
    with open(out / "class_labels_indices.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "mid", "display_name"])
        for i, (mid, name) in enumerate(zip(mids, classes, strict=True)):
            w.writerow([i, mid, name])
    for split, count in counts.items():
        pool = pools[split]
        pool_labels = labels[pool]
        rows = []
        for c in range(len(classes)):
            digit, direction = divmod(c, 2)
            candidates = pool[pool_labels == digit].numpy()
            for j in range(count):
                image = images[int(rng.choice(candidates))].numpy()
                step = (0, -1) if direction == 0 else (0, 1)
                start = (int(rng.integers(0, size)), int(rng.integers(0, size)))
                gray = render_moving_digit(image, step, start, size, num_frames, speed)
                grain = rng.normal(0, 12, gray.shape)
                frames = np.clip(gray.astype(np.float64) + grain, 0, 255).astype(np.uint8)
                rgb = np.repeat(frames[..., None], 3, axis=-1)
                wave = dtmf_tone(digit, seconds, sample_rate, rng, noise=noise)
                ytid = f"{split}{c:02d}x{j:03d}"
                write_av_mp4(out / "videos" / f"{ytid}_0.mp4", rgb, fps, wave, sample_rate)
                rows.append((ytid, 0.0, seconds, mids[c]))
        with open(out / f"{split}_segments.csv", "w") as f:
            f.write("# YTID, start_seconds, end_seconds, positive_labels\n")
            for ytid, s, e, mid in rows:
                f.write(f'{ytid}, {s:.3f}, {e:.3f}, "{mid}"\n')
    meta = {"clips_per_class": clips_per_class, "val_fraction": val_fraction,
            "test_fraction": test_fraction, "size": size, "num_frames": num_frames, "fps": fps,
            "seconds": seconds, "sample_rate": sample_rate, "noise": noise, "speed": speed,
            "seed": seed, "classes": classes}  # fmt: skip
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


class AVClipDataset(Dataset):
    """Clips of ``records`` -> ``(fbank (1, audio_frames, 128), video (3, T, S, S), target)``.

    Audio: the track over the record's segment at 16 kHz, :func:`audiomae_fbank` padded or
    cropped to ``audio_frames``. Video: ``num_frames`` frames spread over the segment, the short
    side resized to ``img_size``, centre cropped, ImageNet-normalised. ``target``: the class
    index (single-label records) or a float multi-hot (``num_classes``,) when ``multilabel``.
    A clip that fails to decode raises :class:`paperzoo.data.video.DecodeError` naming it.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        num_classes: int,
        *,
        audio_frames: int,
        num_frames: int,
        img_size: int,
        multilabel: bool = False,
        sample_rate: int = 16_000,
    ) -> None:
        self.records = list(records)
        self.num_classes = num_classes
        self.audio_frames = audio_frames
        self.num_frames = num_frames
        self.img_size = img_size
        self.multilabel = multilabel
        self.sample_rate = sample_rate
        self._cache: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def _target(self, label: int | list[int]) -> torch.Tensor:
        if self.multilabel:
            hot = torch.zeros(self.num_classes)
            hot[list(label) if isinstance(label, list) else [label]] = 1.0
            return hot
        return torch.tensor(label[0] if isinstance(label, list) else label)

    def _video(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 255.0  # T, 3, H, W
        h, w = x.shape[-2:]
        scale = self.img_size / min(h, w)
        if scale != 1.0:
            size = (max(self.img_size, round(h * scale)), max(self.img_size, round(w * scale)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        h, w = x.shape[-2:]
        top, left = (h - self.img_size) // 2, (w - self.img_size) // 2
        x = x[..., top : top + self.img_size, left : left + self.img_size]
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return ((x - mean) / std).permute(1, 0, 2, 3).contiguous()  # 3, T, S, S

    def decode(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self.records[index]
        start = r.start_sec or 0.0
        end = r.end_sec if r.end_sec is not None else start + 10.0
        clip = read_av_clip(r.path, start, end, self.num_frames, self.sample_rate)
        if clip.audio is None:
            from paperzoo.data.video import DecodeError

            raise DecodeError(r.path, "no audio stream (MAViL needs the sound track)")
        fbank = audiomae_fbank(clip.audio, self.sample_rate, self.audio_frames).unsqueeze(0)
        return fbank, self._video(clip.frames), self._target(r.label)

    def materialize(self) -> AVClipDataset:
        """Decode every clip once and serve them from memory from now on."""
        if self._cache is None:
            self._cache = [self.decode(i) for i in range(len(self))]
        return self

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._cache is not None:
            return self._cache[index]
        return self.decode(index)


def av_digits_splits(
    root: str | os.PathLike[str], *, audio_frames: int, num_frames: int, img_size: int,
    **write_kwargs: Any,
) -> tuple[dict[str, AVClipDataset], list[str]]:  # fmt: skip
    """The digits' train/val/test :class:`AVClipDataset` (decoded into memory), written once
    under ``root`` (again only when ``meta.json`` records other arguments); cells of a study
    sharing ``root`` take turns through a file lock. Returns ``(splits, class names)``."""
    from paperzoo.core.io import file_lock

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".write.lock"):
        meta_path = root / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
        wanted = {k: v for k, v in (meta or {}).items() if k in write_kwargs}
        if meta is None or wanted != write_kwargs:
            meta = write_av_digits(root, **write_kwargs)
    out = {}
    classes: list[str] = []
    for split in ("train", "val", "test"):
        records, classes = read_audioset_csv(
            root / f"{split}_segments.csv", root / "class_labels_indices.csv", root / "videos",
            file_name="{ytid}_0.mp4",
        )  # fmt: skip
        out[split] = AVClipDataset(
            records, len(classes), audio_frames=audio_frames, num_frames=num_frames,
            img_size=img_size,
        ).materialize()  # fmt: skip
    return out, classes
