"""Small model-building rules that several papers' models share (PySlowFast lineage).

- :func:`round_width`: PySlowFast's / PyTorchVideo's channel rounding (``round_width`` in
  ``slowfast/models/utils.py`` and ``pytorchvideo/models/x3d.py``), which X3D's and MViT's
  parameter counts depend on.
- :func:`trunc_normal_init_`: the initialisation of PySlowFast's MViT (``MViT._init_weights``)
  that Hiera's official code repeats.
"""

from __future__ import annotations

from torch import nn

__all__ = ["round_width", "trunc_normal_init_"]


def round_width(width: float, multiplier: float, min_width: int = 1, divisor: int = 1) -> int:
    """``width * multiplier`` rounded half up to a multiple of ``divisor`` (at least
    ``min_width``, or ``divisor`` when 0), never more than 10% below the exact value.
    ``multiplier`` 0 (or None) returns ``width`` unchanged."""
    if not multiplier:
        return int(width)
    width *= multiplier
    min_width = min_width or divisor
    out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if out < 0.9 * width:
        out += divisor
    return int(out)


def trunc_normal_init_(model: nn.Module, std: float = 0.02, bias: float = 0.02) -> None:
    """In place, over every submodule: Linear/Conv2d/Conv3d weights ~ trunc-normal(``std``)
    (cut at +-2 absolute, torch's default, as the official calls leave it),
    Linear biases = ``bias``; LayerNorm weight 1, bias = ``bias`` (0.02, not 0, as the
    official code has it)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.weight, 1.0)
            nn.init.constant_(m.bias, bias)
