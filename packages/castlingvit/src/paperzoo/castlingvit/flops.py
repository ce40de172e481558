"""MACs of Castling-ViT models, with the attention terms counted.

The counter is paperzoo-mvit's :func:`paperzoo.mvit.flops.count_macs` (``torch.utils.
flop_counter.FlopCounterMode`` total / 2, run on the meta device): it counts linear layers,
convolutions (the depthwise (9, 1) conv included), every matmul (the linear-angular k̂ᵀv and
q̂(k̂ᵀv), the masked softmax branch's qkᵀ and (M⊙S)v) and torch SDPA (the softmax twins' timm
attention; the counter has formulas for the SDPA kernels, tested here). Not counted, as in
fvcore-style "FLOPs" tables: norms, softmax, the L2 normalisations, GELU, additions.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import nn

from paperzoo.kernels.castling import castle
from paperzoo.mvit.flops import count_macs

__all__ = ["count_macs", "inference_macs"]


def inference_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs of the castled (linear-only) ``model`` on ``input_shape``; ``model`` keeps its branch.

    The blocks' ``sparse_mass`` (the last training forward's, part of an autograd graph that
    ``deepcopy`` cannot copy) is cleared first.
    """
    for m in model.modules():
        if getattr(m, "sparse_mass", None) is not None:
            m.sparse_mass = None
    clone = copy.deepcopy(model).to("meta")
    castle(clone)
    return count_macs(clone, input_shape)
