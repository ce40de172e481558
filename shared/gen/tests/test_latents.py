"""extract_latents / LatentDataset with a real (small) AutoencoderKL on drawn images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from PIL import Image, ImageDraw
from safetensors.torch import load_file
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from paperzoo.gen.latents import (
    LatentDataset,
    extract_latents,
    imagenet_center_crop,
    imagenet_transform,
)
from paperzoo.gen.vae import SD_VAE_FT_MSE_CONFIG, encode

SMALL = {
    **SD_VAE_FT_MSE_CONFIG,
    "down_block_types": ("DownEncoderBlock2D",) * 2,
    "up_block_types": ("UpDecoderBlock2D",) * 2,
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 32,
}
N = 7


def drawing(i: int, size=(40, 36)) -> Image.Image:
    """A small RGB drawing: an ellipse and a bar whose colour and place depend on ``i``."""
    image = Image.new("RGB", size, (20 * i, 255 - 30 * i, 90))
    draw = ImageDraw.Draw(image)
    draw.ellipse((2 + i, 3, 20 + 2 * i, 25), fill=(250, 40 * i % 256, 10))
    draw.rectangle((0, 28 - i, size[0], 31 - i), fill=(0, 0, 255 - 20 * i))
    return image


class Drawings(torch.utils.data.Dataset):
    """Drawn images as (3, 32, 32) in [-1, 1] with label i % 3; records what was read."""

    def __init__(self) -> None:
        self.read: list[int] = []
        to_tensor = v2.Compose([v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)])
        self.images = [to_tensor(imagenet_center_crop(drawing(i), 32)) * 2 - 1 for i in range(N)]

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int):
        self.read.append(i)
        return self.images[i], i % 3


@pytest.fixture(scope="module")
def vae() -> AutoencoderKL:
    torch.manual_seed(0)
    return AutoencoderKL(**SMALL).eval()


def test_dataset_returns_what_encode_gives(vae, tmp_path):
    data = Drawings()
    out = extract_latents(
        data, vae, tmp_path, batch_size=N, shard_size=N, seed=5, dtype=torch.float32
    )
    ds = LatentDataset(out)
    images = torch.stack(data.images)
    expected = encode(vae, images, generator=torch.Generator().manual_seed(5))
    assert len(ds) == N
    for i in range(N):
        latent, label = ds[i]
        assert latent.dtype == torch.float32 and latent.shape == (4, 16, 16)
        assert torch.equal(latent, expected[i]) and label == i % 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == N and manifest["latent_shape"] == [4, 16, 16]
    assert manifest["scaling_factor"] == 0.18215 and manifest["complete"]
    assert manifest["source"] == "Drawings[7]" and len(manifest["vae_config_hash"]) == 16


def test_flip_stores_both_orientations_as_float16(vae, tmp_path):
    data = Drawings()
    out = extract_latents(data, vae, tmp_path, batch_size=2, shard_size=3, flip=True, sample=False)
    ds = LatentDataset(out)
    assert len(ds) == 2 * N
    images = torch.stack(data.images)
    plain = encode(vae, images, sample=False).half().float()
    mirrored = encode(vae, images.flip(-1), sample=False).half().float()
    got = torch.stack([ds[i][0] for i in range(2 * N)])
    # Batches of 2 vs 7 may differ by float rounding before the float16 cast.
    torch.testing.assert_close(got[:N], plain, atol=2e-3, rtol=0)
    torch.testing.assert_close(got[N:], mirrored, atol=2e-3, rtol=0)
    assert not torch.allclose(got[:N], got[N:], atol=0.05)
    assert [ds[i][1] for i in range(2 * N)] == [i % 3 for i in range(N)] * 2
    assert load_file(out / "shard-00000.safetensors")["latents"].dtype == torch.float16


def test_interrupted_extraction_resumes_to_the_same_bytes(vae, tmp_path):
    whole = extract_latents(
        Drawings(), vae, tmp_path / "whole", batch_size=2, shard_size=2, flip=True
    )
    data = Drawings()
    part = tmp_path / "part"
    extract_latents(data, vae, part, batch_size=2, shard_size=2, flip=True, max_shards=2)
    assert sorted(data.read) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="partial extraction"):
        LatentDataset(part)
    (part / "shard-00001.safetensors").unlink()  # as if killed while writing shard 1
    data.read.clear()
    extract_latents(data, vae, part, batch_size=2, shard_size=2, flip=True)
    assert sorted(data.read) == [2, 3, 4, 5, 6]  # shard 0 is not redone
    for k in range(4):
        name = f"shard-{k:05d}.safetensors"
        assert (whole / name).read_bytes() == (part / name).read_bytes(), name
    assert not list(part.glob(".*.tmp"))
    a, b = LatentDataset(whole), LatentDataset(part)
    assert all(torch.equal(a[i][0], b[i][0]) for i in range(len(a)))


def test_mismatch_and_missing_shards_are_errors(vae, tmp_path):
    extract_latents(Drawings(), vae, tmp_path, batch_size=4, shard_size=4)
    with pytest.raises(ValueError, match=r"other settings.*seed"):
        extract_latents(Drawings(), vae, tmp_path, batch_size=4, shard_size=4, seed=1)
    other = extract_latents(Drawings(), vae, tmp_path / "s1", batch_size=4, shard_size=4, seed=1)
    assert not torch.equal(LatentDataset(tmp_path)[0][0], LatentDataset(other)[0][0])
    (tmp_path / "shard-00001.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="shard-00001"):
        LatentDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"manifest\.json"):
        LatentDataset(tmp_path / "nothing")


def test_image_folder_to_latents(vae, tmp_path):
    for i in range(4):
        folder = tmp_path / "images" / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        drawing(i, size=(70, 90)).save(folder / f"{i}.png")
    folder = ImageFolder(tmp_path / "images", transform=imagenet_transform(32))
    image, _ = folder[0]
    assert image.shape == (3, 32, 32) and image.min() >= -1 and image.max() <= 1
    ds = LatentDataset(extract_latents(folder, vae, tmp_path / "z", batch_size=4, num_workers=0))
    assert [ds[i][1] for i in range(4)] == [0, 0, 1, 1]


def test_center_crop_is_adm_box_then_bicubic():
    # 600 x 400 at size 64: two BOX halvings (to 150 x 100), BICUBIC to 96 x 64, centre crop.
    gradient = np.tile(np.linspace(0, 255, 600, dtype=np.uint8), (400, 1))
    image = Image.fromarray(np.stack([gradient] * 3, -1))
    crop = imagenet_center_crop(image, 64)
    assert crop.size == (64, 64)
    expected = image.resize((300, 200), Image.BOX).resize((150, 100), Image.BOX)
    expected = np.asarray(expected.resize((96, 64), Image.BICUBIC))[:, 16:80]
    assert np.array_equal(np.asarray(crop), expected)
    assert imagenet_center_crop(Image.new("RGB", (20, 30)), 64).size == (64, 64)
