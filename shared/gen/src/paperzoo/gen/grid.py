"""PNG sample grids, as DiT's ``sample.py`` writes them (``torchvision.utils.save_image``).

DiT (Peebles & Xie, arXiv 2212.09748; facebookresearch/DiT ``sample.py``) saves samples with
``save_image(samples, "sample.png", nrow=4, normalize=True, value_range=(-1, 1))``. This does the
same through ``make_grid`` and PIL, but writes atomically so a reader never sees half a PNG.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid

__all__ = ["save_grid"]


def save_grid(
    images: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    nrow: int | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
    padding: int = 2,
) -> Path:
    """Write (B, C, H, W) images (C = 1 or 3, values in ``value_range``) as one PNG grid.

    ``nrow`` images per row (default: ceil(sqrt(B))); values are clamped to ``value_range`` and
    mapped to 0..255 as ``save_image`` does. Returns the path written.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (B, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
    low, high = value_range
    scaled = (images.detach().float().cpu().clamp(low, high) - low) / (high - low)
    grid = make_grid(scaled, nrow=nrow or math.ceil(math.sqrt(len(images))), padding=padding)
    # save_image's rounding: mul(255).add_(0.5).clamp_(0, 255) then truncation to uint8.
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(pixels).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
