"""Inpainting with DiffMAE: masked patches start as Gaussian noise and are denoised step by step.

The paper's inference (Fig. 1, Sec. 3): the encoder runs once on the clean visible patches; the
masked patches start from ``x_T ~ N(0, I)`` and at every step the decoder predicts their clean
pixels ``x_0``, from which diffusers' ``DDPMScheduler.step`` draws ``x_{t-1}``. The visible
patches are never noised or changed: the output holds the input's pixels there, bit for bit.

- :func:`inpaint`: any of the three pre-training models of the study. DiffMAE as above; MAE
  predicts the masked pixels in one pass (its mean estimate); the plain-diffusion model
  (``conditioning="none"``) is conditioned by replacement (the known patches re-noised to the
  current step, then the whole image denoised; Song et al. 2021, "Score-Based Generative
  Modeling through SDEs", Sec. 5, the conditioning RePaint builds on).
- :func:`masked_pixel_mse`: the inpainting error on the masked pixels.
- :func:`save_inpainting_grid`: a PNG of rows (masked input | samples | original).
- ``paperzoo diffmae-inpaint --checkpoint-path P --out grid.png`` (also
  ``python -m paperzoo.diffmae.inpaint``): the grid for a trained checkpoint.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler

from paperzoo.diffmae.model import MAE, DiffMAE, gather_tokens, random_masking

__all__ = ["fixed_masks", "inpaint", "main", "masked_pixel_mse", "save_inpainting_grid"]


def fixed_masks(
    batch: int, num_patches: int, mask_ratio: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids_keep, ids_mask) drawn from ``seed``: the same masks for every model compared."""
    return random_masking(
        batch, num_patches, mask_ratio, generator=torch.Generator().manual_seed(seed)
    )


def _scatter(x0: torch.Tensor, ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``x0`` (B, L, P) with tokens ``ids`` replaced by ``values`` (a new tensor)."""
    return x0.scatter(1, ids.unsqueeze(-1).expand(-1, -1, x0.shape[-1]), values)


@torch.no_grad()
def inpaint(
    model: DiffMAE | MAE,
    images: torch.Tensor,
    ids_keep: torch.Tensor,
    ids_mask: torch.Tensor,
    *,
    scheduler: DDPMScheduler | None = None,
    num_inference_steps: int = 50,
    generator: torch.Generator | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Fill the patches ``ids_mask`` (B, Lm) of ``images`` (B, C, [T,] H, W) from the patches
    ``ids_keep``; returns images of the same shape, equal to ``images`` on the kept patches.

    ``scheduler`` (DiffMAE models) defaults to the pre-training's
    (:func:`paperzoo.diffmae.method.ddpm_scheduler`); it is copied, so ``set_timesteps`` leaves
    the caller's untouched. ``callback(step_index, patches)`` sees the composite (B, L, P)
    after every step. ``generator`` (CPU) seeds the initial noise and the sampler's noise.
    """
    from paperzoo.diffmae.method import ddpm_scheduler

    model.eval()
    device = images.device
    x0 = model.patchify(images)
    if isinstance(model, MAE):
        pred = model.forward_decoder(model.forward_encoder(images, ids_keep)[-1], ids_keep)
        out = _scatter(x0, ids_mask, gather_tokens(pred, ids_mask))
        if callback is not None:
            callback(0, out)
        return model.unpatchify(out)
    sched = copy.deepcopy(scheduler) if scheduler is not None else ddpm_scheduler()
    sched.set_timesteps(num_inference_steps, device=device)
    B, L, P = x0.shape

    def noise(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device)

    if model.conditioning == "masked":
        features = model.forward_encoder(images, ids_keep)  # the clean visible patches, once
        xt = noise(B, ids_mask.shape[1], P)
        for i, t in enumerate(sched.timesteps):
            steps = t.expand(B).to(device)
            pred = model.forward_decoder(features, xt, ids_mask, steps)
            xt = sched.step(pred, t, xt, generator=generator).prev_sample
            if callback is not None:
                callback(i, _scatter(x0, ids_mask, xt))
        return model.unpatchify(_scatter(x0, ids_mask, xt))
    # Plain diffusion: condition by replacing the known patches with their noised versions.
    xt = noise(B, L, P)
    everything = torch.arange(L, device=device).expand(B, L)
    for i, t in enumerate(sched.timesteps):
        steps = t.expand(B).to(device)
        known = sched.add_noise(gather_tokens(x0, ids_keep), noise(*ids_keep.shape, P), steps)
        xt = _scatter(xt, ids_keep, known)
        features = model.forward_encoder(model.unpatchify(xt))
        pred = model.forward_decoder(features, xt, everything, steps)
        xt = sched.step(pred, t, xt, generator=generator).prev_sample
        if callback is not None:
            callback(i, _scatter(x0, ids_mask, gather_tokens(xt, ids_mask)))
    return model.unpatchify(_scatter(x0, ids_mask, gather_tokens(xt, ids_mask)))


def masked_pixel_mse(
    filled: torch.Tensor, images: torch.Tensor, ids_mask: torch.Tensor, model: DiffMAE | MAE
) -> float:
    """Mean squared error over the pixels of the masked patches (in the images' units)."""
    a = gather_tokens(model.patchify(filled), ids_mask)
    b = gather_tokens(model.patchify(images), ids_mask)
    return float(torch.mean((a - b) ** 2))


def _masked_view(images: torch.Tensor, ids_mask: torch.Tensor, model: DiffMAE | MAE,
                 fill: float) -> torch.Tensor:  # fmt: skip
    x0 = model.patchify(images)
    gray = torch.full_like(gather_tokens(x0, ids_mask), fill)
    return model.unpatchify(_scatter(x0, ids_mask, gray))


def save_inpainting_grid(
    model: DiffMAE | MAE,
    images: torch.Tensor,
    path: str | Path,
    *,
    mask_ratio: float | None = None,
    num_samples: int = 2,
    num_inference_steps: int = 50,
    seed: int = 0,
    value_range: Sequence[float] = (-1.0, 1.0),
    scheduler: DDPMScheduler | None = None,
) -> Path:
    """Write a PNG: one row per image of ``images`` (B, C, H, W) (videos: their first frame),
    columns = the masked input (masked patches gray), ``num_samples`` samples, the original.

    ``value_range`` is the range of the images' values, mapped to black..white.
    """
    from torchvision.utils import save_image

    ratio = model.mask_ratio if mask_ratio is None else mask_ratio
    ids_keep, ids_mask = fixed_masks(images.shape[0], model.num_patches, ratio, seed)
    ids_keep, ids_mask = ids_keep.to(images.device), ids_mask.to(images.device)
    lo, hi = value_range
    columns = [_masked_view(images, ids_mask, model, (lo + hi) / 2)]
    generator = torch.Generator().manual_seed(seed)
    for _ in range(num_samples if isinstance(model, DiffMAE) else 1):
        columns.append(inpaint(model, images, ids_keep, ids_mask, scheduler=scheduler,
                               num_inference_steps=num_inference_steps, generator=generator))  # fmt: skip
    columns.append(images)
    if images.ndim == 5:
        columns = [c[:, :, 0] for c in columns]
    grid = torch.stack(columns, dim=1).flatten(0, 1)  # row by row
    grid = ((grid.float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path, nrow=len(columns), padding=2, pad_value=1.0)
    return path


def _mnist_images(count: int, seed: int) -> torch.Tensor:
    """``count`` digits of the bundled MNIST sample's held-out test split, in [-1, 1]."""
    from paperzoo.data.images import load_mnist_sample, stratified_split

    images, labels = load_mnist_sample()
    _, test = stratified_split(labels, 0.2, seed=0)
    pick = test[torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:count]]
    return images[pick].float().div(127.5).sub(1.0).unsqueeze(1)


def _folder_images(root: str, count: int, size: int) -> torch.Tensor:
    """The first ``count`` images of an image folder, resized and ImageNet-normalised."""
    from torchvision.transforms import v2

    from paperzoo.data.images import IMAGENET_MEAN, IMAGENET_STD, ImageFolderDataset

    tf = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size),
                     v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
                     v2.ToPureTensor()])  # fmt: skip
    dataset = ImageFolderDataset(root, transform=tf)
    return torch.stack([dataset[i][0] for i in range(min(count, len(dataset)))])


def main(argv: Sequence[str] | None = None) -> int:
    """``paperzoo diffmae-inpaint``: write an inpainting grid for a checkpoint."""
    parser = argparse.ArgumentParser(
        prog="paperzoo diffmae-inpaint",
        description="Inpaint masked images with a DiffMAE (or MAE) checkpoint and write a grid "
        "PNG: masked input | samples | original.",
    )
    parser.add_argument("--checkpoint-path", required=True, help="model.safetensors, or an "
                        "MAE-style checkpoint-N.pth with a 'model' entry")  # fmt: skip
    parser.add_argument("--model", default="diffmae_tiny_mnist", help="registered model name")
    parser.add_argument("--out", default="inpainting.png", help="the PNG to write")
    parser.add_argument("--images", default="", help="an image folder (root/<class>/<file>); "
                        "default: held-out digits of the bundled MNIST sample")  # fmt: skip
    parser.add_argument("--num-images", type=int, default=8)
    parser.add_argument("--num-samples", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50, help="denoising steps")
    parser.add_argument("--mask-ratio", type=float, default=None)
    parser.add_argument("--beta-schedule", default="squaredcos_cap_v2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from paperzoo.core import create_model
    from paperzoo.diffmae.method import ddpm_scheduler

    model: Any = create_model(args.model, checkpoint_path=args.checkpoint_path)
    if not isinstance(model, (DiffMAE, MAE)):
        parser.error(f"{args.model} is not a DiffMAE or MAE pre-training model")
    if args.images:
        size = model.patch_embed.img_size[0]
        images, value_range = _folder_images(args.images, args.num_images, size), (-2.2, 2.7)
    else:
        images, value_range = _mnist_images(args.num_images, args.seed), (-1.0, 1.0)
    path = save_inpainting_grid(
        model, images, args.out, mask_ratio=args.mask_ratio, num_samples=args.num_samples,
        num_inference_steps=args.steps, seed=args.seed, value_range=value_range,
        scheduler=ddpm_scheduler(beta_schedule=args.beta_schedule),
    )  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
