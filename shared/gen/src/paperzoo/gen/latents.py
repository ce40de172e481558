"""Pre-extracted VAE latents on disk: write them once, train on them many times.

Follows fast-DiT's ``extract_features.py`` (chuanyangjin/fast-DiT, the latent pre-extraction used
with DiT, arXiv 2212.09748), the data pipeline of the advflow training code (arXiv 2511.22475):
ADM's ``center_crop_arr`` to 256 px (openai/guided-diffusion ``image_datasets.py``), then
``vae.encode(x).latent_dist.sample().mul_(0.18215)``, i.e. a posterior *sample*, not its mean
(``sample=True`` here; ``sample=False`` takes the mean). fast-DiT draws one random horizontal flip
per image at extraction time; ``flip=True`` here stores both orientations instead (as
LightningDiT/REPA-style extractors do), and :class:`LatentDataset` serves the flipped copies as
extra items, so a shuffled epoch sees each image once in each orientation.

Layout of ``out_dir``: ``shard-00000.safetensors``... (``latents`` (n, C, h, w), optionally
``latents_flipped``, ``labels`` (n,) int64) and ``manifest.json``. Every shard is written to a
temporary name and renamed, so an interrupted extraction resumes at the first missing shard.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from paperzoo.gen.vae import encode

__all__ = ["LatentDataset", "extract_latents", "imagenet_center_crop", "imagenet_transform"]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def imagenet_center_crop(image: Image.Image, size: int) -> Image.Image:
    """ADM's ``center_crop_arr``: BOX-halve while the short side >= 2*size, BICUBIC, centre crop.

    torchvision's Resize + CenterCrop resamples once and so gives different pixels; DiT, SiT and
    advflow all train on this exact crop, hence the copy.
    """
    while min(*image.size) >= 2 * size:
        image = image.resize(tuple(x // 2 for x in image.size), resample=Image.BOX)
    scale = size / min(*image.size)
    image = image.resize(tuple(round(x * scale) for x in image.size), resample=Image.BICUBIC)
    arr = np.asarray(image)
    top, left = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    return Image.fromarray(arr[top : top + size, left : left + size])


def imagenet_transform(size: int = 256) -> v2.Compose:
    """PIL image -> (3, size, size) float in [-1, 1]: the ADM crop then DiT's Normalize(0.5, 0.5).

    For ``torchvision.datasets.ImageFolder(root, transform=imagenet_transform(256))``; the random
    flip of DiT's transform is left out (see ``flip`` of :func:`extract_latents`).
    """
    return v2.Compose(
        [
            v2.Lambda(functools.partial(imagenet_center_crop, size=size)),  # picklable for workers
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
        ]
    )


def extract_latents(
    dataset: Dataset,
    vae: Any,
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int,
    shard_size: int = 4096,
    flip: bool = False,
    sample: bool = True,
    seed: int = 0,
    dtype: torch.dtype = torch.float16,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    source: str | None = None,
    max_shards: int | None = None,
) -> Path:
    """Encode ``dataset`` (items ``(image (3, H, W) in [-1, 1], label)``) into sharded latents.

    Scaled latents (``z * scaling_factor``) are stored as ``dtype`` (float16 or float32). Shard
    ``k`` draws its posterior samples, batch by batch (each batch, then its flip), from one
    generator seeded with ``seed + k * 1_000_003``, so a resumed run writes exactly what an
    uninterrupted one would. ``max_shards`` stops after that many new shards
    (a bounded work slice). Returns ``out_dir``; the manifest says ``complete`` once all shards exist.
    """
    if dtype not in (torch.float16, torch.float32):
        raise ValueError(f"dtype must be torch.float16 or torch.float32, got {dtype}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    count = len(dataset)
    settings = {
        "format_version": FORMAT_VERSION,
        "count": count,
        "shard_size": shard_size,
        "flip": flip,
        "sample": sample,
        "seed": seed,
        "dtype": str(dtype).removeprefix("torch."),
        "vae_config_hash": _config_hash(dict(vae.config)),
        "scaling_factor": float(vae.config.scaling_factor),
        "source": source or f"{type(dataset).__name__}[{count}]",
    }
    manifest = _read_manifest(out)
    if manifest is not None and {k: manifest.get(k) for k in settings} != settings:
        changed = sorted(k for k in settings if manifest.get(k) != settings[k])
        raise ValueError(
            f"{out} holds latents extracted with other settings ({', '.join(changed)}); "
            "use a new out_dir or delete it"
        )
    num_shards = -(-count // shard_size)
    shapes = manifest.get("latent_shape") if manifest else None
    # Written before any shard, so a killed run's shards are checked against it on resume.
    _write_manifest(
        out, {**settings, "num_shards": num_shards, "latent_shape": shapes, "complete": False}
    )
    new = 0
    vae = vae.to(device).eval()
    for k in range(num_shards):
        path = out / _shard_name(k)
        if path.exists():
            continue
        if max_shards is not None and new >= max_shards:
            break
        start, stop = k * shard_size, min((k + 1) * shard_size, count)
        tensors = _encode_range(
            dataset, vae, range(start, stop), batch_size, num_workers, flip, sample, seed, k
        )
        tensors = {name: t.to(dtype) if t.is_floating_point() else t for name, t in tensors.items()}
        shapes = list(tensors["latents"].shape[1:])
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(tensors, tmp)
        os.replace(tmp, path)
        new += 1
    complete = all((out / _shard_name(k)).exists() for k in range(num_shards))
    _write_manifest(
        out,
        {**settings, "num_shards": num_shards, "latent_shape": shapes, "complete": complete},
    )
    return out


class LatentDataset(Dataset):
    """The latents :func:`extract_latents` wrote, as ``(latent (C, h, w) float32, label int)``.

    With ``flip`` extractions, items ``count..2*count-1`` are the flipped copies. Shards are opened
    lazily through ``safetensors.safe_open`` (memory-mapped), one handle per shard per process.
    """

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.root = Path(out_dir)
        manifest = _read_manifest(self.root)
        if manifest is None:
            raise FileNotFoundError(f"{self.root / MANIFEST} not found; run extract_latents first")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{self.root / MANIFEST}: format_version {manifest.get('format_version')!r}, "
                f"expected {FORMAT_VERSION}"
            )
        if not manifest["complete"]:
            raise ValueError(
                f"{self.root} is a partial extraction; rerun extract_latents to finish"
            )
        missing = [
            _shard_name(k)
            for k in range(manifest["num_shards"])
            if not (self.root / _shard_name(k)).exists()
        ]
        if missing:
            raise FileNotFoundError(f"{self.root}: missing shards {missing}")
        self.manifest = manifest
        self.count = int(manifest["count"])
        self.shard_size = int(manifest["shard_size"])
        self.scaling_factor = float(manifest["scaling_factor"])
        self._handles: dict[int, Any] = {}

    def __len__(self) -> int:
        return self.count * (2 if self.manifest["flip"] else 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} latents")
        index %= len(self)
        flipped, image = divmod(index, self.count)
        shard, offset = divmod(image, self.shard_size)
        handle = self._handle(shard)
        key = "latents_flipped" if flipped else "latents"
        latent = handle.get_slice(key)[offset : offset + 1][0].float()
        label = int(handle.get_slice("labels")[offset : offset + 1][0])
        return latent, label

    def _handle(self, shard: int) -> Any:
        if shard not in self._handles:
            self._handles[shard] = safe_open(self.root / _shard_name(shard), framework="pt")
        return self._handles[shard]

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers reopen the shards
        return {**self.__dict__, "_handles": {}}


def _encode_range(
    dataset: Dataset,
    vae: Any,
    indices: Sequence[int],
    batch_size: int,
    num_workers: int,
    flip: bool,
    sample: bool,
    seed: int,
    shard: int,
) -> dict[str, torch.Tensor]:
    device = next(vae.parameters()).device
    generator = torch.Generator(device).manual_seed(seed + shard * 1_000_003)
    latents, flipped, labels = [], [], []
    loader = DataLoader(
        Subset(dataset, list(indices)), batch_size=batch_size, num_workers=num_workers
    )
    for images, targets in loader:
        images = images.to(device)
        latents.append(encode(vae, images, sample=sample, generator=generator).cpu())
        if flip:
            mirrored = images.flip(-1)
            flipped.append(encode(vae, mirrored, sample=sample, generator=generator).cpu())
        labels.append(torch.as_tensor(targets, dtype=torch.int64))
    tensors = {"latents": torch.cat(latents), "labels": torch.cat(labels)}
    if flip:
        tensors["latents_flipped"] = torch.cat(flipped)
    return {name: t.contiguous() for name, t in tensors.items()}


def _shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


def _config_hash(config: dict[str, Any]) -> str:
    text = json.dumps(
        {k: v for k, v in config.items() if not k.startswith("_")}, sort_keys=True, default=list
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_manifest(root: Path) -> dict[str, Any] | None:
    path = root / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    tmp = root / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, root / MANIFEST)
