"""Iterative inpainting: visible patches stay exactly clean, the sampler's loop, the grid, the CLI."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from paperzoo.diffmae.inpaint import fixed_masks, inpaint, masked_pixel_mse, save_inpainting_grid
from paperzoo.diffmae.model import build_pretraining_model, gather_tokens


@pytest.mark.parametrize("method", ["diffmae", "diffusion", "mae"])
def test_visible_patches_stay_exactly_clean_at_every_step(method):
    torch.manual_seed(0)
    model = build_pretraining_model("tiny_mnist", method)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    keep, mask = fixed_masks(3, model.num_patches, 0.75, seed=1)
    truth = model.patchify(x)
    steps: list[torch.Tensor] = []
    out = inpaint(model, x, keep, mask, num_inference_steps=6,
                  generator=torch.Generator().manual_seed(0),
                  callback=lambda i, patches: steps.append(patches.clone()))  # fmt: skip
    assert len(steps) == (1 if method == "mae" else 6)
    for patches in steps:
        assert torch.equal(gather_tokens(patches, keep), gather_tokens(truth, keep))
    assert torch.equal(gather_tokens(model.patchify(out), keep), gather_tokens(truth, keep))
    # The masked patches are filled (not copied from the input).
    assert not torch.allclose(gather_tokens(model.patchify(out), mask), gather_tokens(truth, mask))
    if method != "mae":  # the first step starts from Gaussian noise, far from the image
        first = gather_tokens(steps[0], mask)
        assert float(first.std()) > 0.5 and not torch.allclose(first, gather_tokens(truth, mask))


def test_the_sampler_reaches_the_image_when_the_decoder_knows_it():
    torch.manual_seed(0)
    model = build_pretraining_model("tiny_mnist", "diffmae")
    x = torch.rand(2, 1, 28, 28)
    keep, mask = fixed_masks(2, model.num_patches, 0.75)
    truth = model.patchify(x)
    calls: list[torch.Tensor] = []

    def oracle(features, noisy, ids, timesteps):
        calls.append(timesteps)
        assert torch.equal(ids, mask) and noisy.shape == (2, 12, 49)
        return gather_tokens(truth, ids)

    model.forward_decoder = oracle  # type: ignore[method-assign]
    out = inpaint(model, x, keep, mask, num_inference_steps=8)
    torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-5)
    # The steps run from near T down to 0, one decoder call each.
    assert len(calls) == 8 and int(calls[0][0]) > 800 and int(calls[-1][0]) == 0
    assert masked_pixel_mse(out, x, mask, model) < 1e-10


def test_sampling_is_seeded_and_stochastic():
    torch.manual_seed(0)
    model = build_pretraining_model("tiny_mnist", "diffmae")
    x = torch.rand(2, 1, 28, 28)
    keep, mask = fixed_masks(2, model.num_patches, 0.75)

    def run(seed):
        return inpaint(model, x, keep, mask, num_inference_steps=4,
                       generator=torch.Generator().manual_seed(seed))  # fmt: skip

    assert torch.equal(run(3), run(3)) and not torch.equal(run(3), run(4))


def test_inpainting_grid_png(tmp_path):
    torch.manual_seed(0)
    model = build_pretraining_model("tiny_mnist", "diffmae")
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    path = save_inpainting_grid(model, x, tmp_path / "grid.png", num_samples=2,
                                num_inference_steps=3)  # fmt: skip
    with Image.open(path) as img:
        # 3 rows x (masked input, 2 samples, original), 28 px each with 2 px padding.
        assert img.size == (2 + 4 * 30, 2 + 3 * 30)


def test_cli_writes_a_grid_for_a_trained_checkpoint(tmp_path):
    from safetensors.torch import save_file

    from paperzoo.core.cli import main

    torch.manual_seed(0)
    model = build_pretraining_model("tiny_mnist", "diffmae")
    ckpt = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(ckpt))
    out = tmp_path / "grid.png"
    code = main(["diffmae-inpaint", "--checkpoint-path", str(ckpt), "--model",
                 "diffmae_tiny_mnist", "--out", str(out), "--num-images", "2", "--steps", "2"])  # fmt: skip
    assert code == 0 and out.is_file()
    with Image.open(out) as img:
        assert img.size == (2 + 4 * 30, 2 + 2 * 30)
