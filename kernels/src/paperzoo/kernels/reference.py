"""Plain-PyTorch reference attention in float64: the oracle every kernel is tested against."""

from __future__ import annotations

import math

import torch

__all__ = ["reference_attention"]


def reference_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(q kᵀ · scale + mask) v computed explicitly in float64, differentiable.

    Shapes and mask semantics as :func:`paperzoo.kernels.attention`: q (B, H, Nq, D), k
    (B, H, Nk, D), v (B, H, Nk, Dv); bool masks mark kept entries, float masks are added; causal
    is top-left aligned. Returns (B, H, Nq, Dv) float64. Fully masked rows give NaN, as the
    textbook formula does.
    """
    q, k, v = q.double(), k.double(), v.double()
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    n_q, n_k = scores.shape[-2:]
    if is_causal:
        keep = torch.ones(n_q, n_k, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.double()
    return scores.softmax(dim=-1) @ v
