"""FLOP counting for the FLOPs tables: multiply-accumulates (MACs), the papers' "FLOPs".

MViT, MViTv2, SlowFast and pytorchvideo report "GFLOPs" as counted by fvcore, which counts one
fused multiply-add as one FLOP, i.e. MACs. ``torch.utils.flop_counter`` counts a multiply and an
add separately (2 per MAC), so the MACs here are its total divided by 2. Counted: convolutions,
matrix products (linear layers, attention scores and values, the relative-position einsums).
Not counted (as fvcore by default for these models): norms, activations, softmax, pooling,
additions. The attention goes through the math path (explicit matmuls) on the meta device, so
it is always counted whatever backend would run on real tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_macs"]


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs of one forward pass of ``model`` on an input of ``input_shape`` (batch included).

    The model is run on the meta device (a copy when it holds real weights), so counting a
    full-size model at 16x224^2 costs no compute and no memory.
    """
    if any(p.device.type != "meta" for p in model.parameters()):
        model = _meta_copy(model)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(tuple(input_shape), device="meta"))
    model.train(was_training)
    return counter.get_total_flops() // 2


def _meta_copy(model: nn.Module) -> nn.Module:
    import copy

    clone = copy.deepcopy(model)
    return clone.to("meta")
