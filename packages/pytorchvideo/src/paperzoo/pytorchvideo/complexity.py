"""Parameter and FLOP counts, in the convention of the X3D paper's tables.

X3D (arXiv 2004.04730) and PyTorchVideo report "FLOPs" as multiply-adds of the conv and
linear layers for one view (norms, activations and pooling not counted), as fvcore's
``FlopCountAnalysis`` does. ``torch.utils.flop_counter`` counts a multiply-add as 2 FLOPs
over the same ops, so :func:`count_flops` halves its total.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "count_params"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Multiply-adds of one forward pass on a zero tensor of ``input_shape`` (B, 3, T, H, W).

    Returns a float count (divide by 1e9 for the paper's GFLOPs); the model is run in eval
    mode without gradients and left in the mode it was in. The input is made on the model's
    device, so a model built under ``torch.device("meta")`` is counted without computing.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2
