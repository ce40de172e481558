"""Castling-ViT linear-angular attention.

Paper: "Castling-ViT: Compressing Self-Attention via Switching Towards Linear-Angular Attention
During Vision Transformer Inference", Haoran You, Yunyang Xiong, Xiaoliang Dai, Bichen Wu,
Peizhao Zhang, Haoqi Fan, Peter Vajda, Yingyan Lin. CVPR 2023, arXiv 2211.10526.
Code followed: GATECH-EIC/Castling-ViT, ``castling-vit.py`` (``LinAngularAttention``), the
authors' miniature release of the attention block.

The angular kernel sim(q, k) = 1 - arccos(q̂·k̂)/π has the Taylor expansion
1/2 + (q̂·k̂)/π + (higher odd terms); Castling-ViT keeps the linear part, which factorises so
the cost is O(N·D²) instead of O(N²·D):

    Attn = normalize( 0.5·V + (1/π) · Q̂ (K̂ᵀ V) ) + DWConv(V)

with Q̂, K̂ the per-head L2-normalised queries and keys and ``normalize`` an L2 normalisation of
each output token over the head dim. Note the constant term: the official code adds ``0.5 * v``
(each token's own value), not 0.5·ΣⱼVⱼ as a literal expansion of Σⱼ sim(qᵢ, kⱼ)vⱼ would give; we
follow the code, which is what the released results use. DWConv is a depthwise
Conv2d(heads, heads, kernel (9, 1), groups=heads) over the (tokens, head dim) plane of V: a
9-token window along the sequence, per head.

The optional ``sparse_reg`` branch is the training-time auxiliary softmax attention: with
S = softmax(QKᵀ/√d) on the raw q, k, it adds (S ⊙ [S > 0.02]) V. The paper regularises it towards
zero so it can be dropped at inference (the regulariser is not in the official code, nor here).

No Triton kernel: the work is two batched GEMMs (K̂ᵀV: (D, N)x(N, D), then Q̂ times that) that
cuBLAS already runs at full speed, plus O(N·D) element-wise terms; a fused kernel would save only
those element-wise memory passes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LinearAngularAttention",
    "linear_angular_attention",
    "linear_angular_attention_reference",
]


def _linear_term(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """0.5·v + (1/π)·q̂ (k̂ᵀ v), before the output normalisation."""
    if q.shape[-2] != v.shape[-2] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            "linear-angular attention is self-attention: q, k, v need the same length, got "
            f"{q.shape[-2]}, {k.shape[-2]}, {v.shape[-2]}"
        )
    q_hat = F.normalize(q, dim=-1)
    k_hat = F.normalize(k, dim=-1)
    context = k_hat.transpose(-2, -1) @ v  # (B, H, D, Dv): the whole sequence, summarised once
    return 0.5 * v + (q_hat @ context) / math.pi


def linear_angular_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """normalize(0.5·v + (1/π)·q̂ (k̂ᵀ v)) in linear time, the core of Castling-ViT.

    Args:
        q, k: (B, H, N, D) queries and keys (normalised here, per head and token).
        v: (B, H, N, Dv) values.

    Returns:
        (B, H, N, Dv), each token L2-normalised over Dv.
    """
    return F.normalize(_linear_term(q, k, v), dim=-1)


def linear_angular_attention_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """The same attention in its quadratic form, (0.5·I + (1/π)·Q̂K̂ᵀ) V, then normalised.

    O(N²) memory; for tests. Shapes as :func:`linear_angular_attention`.
    """
    q_hat = F.normalize(q, dim=-1)
    k_hat = F.normalize(k, dim=-1)
    n = q.shape[-2]
    eye = torch.eye(n, dtype=q.dtype, device=q.device)
    weights = 0.5 * eye + (q_hat @ k_hat.transpose(-2, -1)) / math.pi  # (B, H, N, N)
    return F.normalize(weights @ v, dim=-1)


class LinearAngularAttention(nn.Module):
    """Castling-ViT attention block: qkv, linear-angular attention, DWConv(V) residual, proj.

    Parameter names (``qkv``, ``dconv``, ``proj``) and shapes match the official
    ``LinAngularAttention``, so its state dicts load unchanged.

    Args:
        dim: channels C of the input tokens (``in_channels`` in the official code).
        num_heads: heads; C must be divisible by it.
        qkv_bias: bias in the qkv projection.
        attn_drop: accepted for signature compatibility; the official block defines this
            dropout but never applies it, and neither do we.
        proj_drop: dropout after the output projection.
        res_kernel_size: token-axis kernel of the depthwise V convolution (9 in the paper).
        sparse_reg: add the training-time auxiliary masked softmax branch.
        sparse_threshold: keep softmax weights above this in that branch (0.02 officially).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        res_kernel_size: int = 9,
        sparse_reg: bool = False,
        sparse_threshold: float = 0.02,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.sparse_reg = sparse_reg
        self.sparse_threshold = sparse_threshold
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.dconv = nn.Conv2d(
            num_heads,
            num_heads,
            kernel_size=(res_kernel_size, 1),
            padding=(res_kernel_size // 2, 0),
            bias=False,
            groups=num_heads,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, C) tokens -> (B, N, C)."""
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, H, N, Dh) each
        out = _linear_term(q, k, v)
        if self.sparse_reg:
            weights = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            out = out + (weights * (weights > self.sparse_threshold)) @ v
        out = F.normalize(out, dim=-1)
        out = out + self.dconv(v)  # heads are the conv's channels, tokens its height
        out = out.transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(out))
