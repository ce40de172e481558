"""``paperzoo sample`` on advflow generators: the real CLI on the pixel-space tiny model from a
checkpoint file, and the latent path (XL/2's layout at a small depth, decoded by a randomly
initialised sd-vae-ft-mse file) through :func:`paperzoo.gen.sample.sample_grid`."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from paperzoo.core import create_model
from paperzoo.gen.sample import ClassConditionalSampler, main, sample_grid


def _random_weights(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        k: (0.2 * torch.randn(v.shape, generator=g) if k != "pos_embed" else v.clone())
        for k, v in model.state_dict().items()
    }


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "paperzoo.core.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip


def test_paperzoo_sample_writes_the_grid_of_the_tiny_1nfe_generator(tmp_path, capsys):
    model = create_model("advflow_tiny_1nfe")
    assert isinstance(model, ClassConditionalSampler) and model.output_space == "pixel"
    weights = _random_weights(model, 0)
    torch.save(weights, tmp_path / "tiny_1nfe.pth")
    out = tmp_path / "grid.png"
    res = _cli("sample", "advflow_tiny_1nfe", "--checkpoint-path", str(tmp_path / "tiny_1nfe.pth"),
               "--classes", "1,7", "--out", str(out))  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("grid.png")
    image = np.asarray(Image.open(out))
    # 2 rows (classes) x 4 columns (per class) of 28 px digits with 2 px padding, gray as RGB
    assert image.shape[:2] == (2 + 2 * 30, 2 + 4 * 30)
    # the same seed gives the same grid; the loaded weights (not a random init) made it
    model.load_state_dict(weights)
    again = sample_grid(model, [1, 7], tmp_path / "again.png")
    assert np.array_equal(np.asarray(Image.open(again)), image)
    fresh = sample_grid(create_model("advflow_tiny_1nfe"), [1, 7], tmp_path / "fresh.png")
    assert not np.array_equal(np.asarray(Image.open(fresh)), image)
    # out-of-range classes are a clear error (the command's main, in this process)
    code = main(["advflow_tiny_1nfe", "--classes", "10", "--out", str(tmp_path / "x.png")])
    assert code == 2 and "out of range" in capsys.readouterr().err


def test_latent_generator_is_decoded_through_the_vae(tmp_path):
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    from paperzoo.gen.vae import SD_VAE_FT_MSE_CONFIG

    small = dict(depth=1, hidden_size=32, num_heads=4, input_size=4)  # 4 x 4 latents
    model = create_model("advflow_xl2_1nfe", **small)
    torch.save(_random_weights(model, 1), tmp_path / "xl2_1nfe.pth")
    model = create_model("advflow_xl2_1nfe", checkpoint_path=tmp_path / "xl2_1nfe.pth", **small)
    assert model.output_space == "latent"
    torch.manual_seed(0)
    vae = AutoencoderKL(**SD_VAE_FT_MSE_CONFIG)  # random weights in the sd-vae-ft-mse shape
    save_file({k: v.half() for k, v in vae.state_dict().items()}, tmp_path / "vae.safetensors")
    out = sample_grid(model, [207, 360], tmp_path / "grid.png", per_class=2,
                      vae_path=tmp_path / "vae.safetensors")  # fmt: skip
    image = np.asarray(Image.open(out))
    # the VAE upsamples 4 x 4 latents 8x: 2 x 2 images of 32 px, 2 px padding, RGB
    assert image.shape == (2 + 2 * 34, 2 + 2 * 34, 3)
    with pytest.raises(ValueError, match="vae-path"):
        sample_grid(model, [207], tmp_path / "novae.png")
