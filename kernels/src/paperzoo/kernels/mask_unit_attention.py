"""Hiera mask-unit attention.

Paper: "Hiera: A Hierarchical Vision Transformer without the Bells-and-Whistles", Chaitanya Ryali,
Yuan-Ting Hu, Daniel Bolya, Chen Wei, Haoqi Fan, Po-Yao Huang, Vaibhav Aggarwal, Arkabandhu
Chowdhury, Omid Poursaeed, Judy Hoffman, Jitendra Malik, Yanghao Li, Christoph Feichtenhofer.
ICML 2023, arXiv 2306.00989.
Code followed: facebookresearch/hiera ``hiera/hiera.py`` (``MaskUnitAttention``), published on
PyPI as ``hiera-transformer``; timm's ``timm.models.hiera.MaskUnitAttention`` is the same block.

Tokens arrive already "unrolled" (see Hiera's ``Unroll``): the sequence is ordered so that the
tokens of each mask unit are strided by the number of units, and the q_stride tokens that pool
into one are ``N / q_stride`` apart. Hence the two reshapes:

- mask-unit attention: (B, N, C) -> (B, N / windows, windows, ...) puts each window's tokens on
  their own axis, and attention runs inside each window (windows become extra "heads");
- query pooling: a max over the leading q_stride chunks of each window's tokens is exactly a
  stride-q_stride max-pool on the spatial grid, without ever materialising the grid.

Parameter names and shapes (``qkv``, ``proj``) match the official and timm blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from paperzoo.kernels.dispatch import attention

__all__ = ["MaskUnitAttention"]


class MaskUnitAttention(nn.Module):
    """Mask-unit (windowed) or global attention with optional max-pooled queries.

    Args:
        dim: input channels.
        dim_out: output channels (heads x head dim).
        heads: attention heads.
        q_stride: flattened query pooling stride (2x2 pooling is 4); 1 for none.
        window_size: tokens per mask unit *after* query pooling.
        use_mask_unit_attn: attend within mask units (True) or globally (False).

    Shapes: ``forward(x)`` takes unrolled tokens (B, N, dim) and returns (B, N / q_stride,
    dim_out).
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        heads: int,
        q_stride: int = 1,
        window_size: int = 0,
        use_mask_unit_attn: bool = False,
    ) -> None:
        super().__init__()
        if dim_out % heads != 0:
            raise ValueError(f"dim_out {dim_out} must be divisible by heads {heads}")
        self.dim = dim
        self.dim_out = dim_out
        self.heads = heads
        self.q_stride = q_stride
        self.head_dim = dim_out // heads
        self.scale = self.head_dim**-0.5
        self.window_size = window_size
        self.use_mask_unit_attn = use_mask_unit_attn
        self.qkv = nn.Linear(dim, 3 * dim_out)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        windows = 1
        if self.use_mask_unit_attn:
            unit = self.q_stride * self.window_size
            if unit <= 0 or n % unit != 0:
                raise ValueError(
                    f"{n} tokens do not split into mask units of q_stride*window_size = {unit}"
                )
            windows = n // unit
        if n % (windows * self.q_stride) != 0:
            raise ValueError(f"{n} tokens are not divisible by windows*q_stride")
        qkv = self.qkv(x).reshape(b, -1, windows, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(3, 0, 4, 2, 1, 5).unbind(0)  # (B, heads, windows, T, Dh)
        if self.q_stride > 1:
            q = q.reshape(b, self.heads, windows, self.q_stride, -1, self.head_dim).amax(dim=3)
        t_q, t_k = q.shape[3], k.shape[3]
        # Windows join the heads axis: attention is independent per (head, window) pair.
        out = attention(
            q.reshape(b, self.heads * windows, t_q, self.head_dim),
            k.reshape(b, self.heads * windows, t_k, self.head_dim),
            v.reshape(b, self.heads * windows, t_k, self.head_dim),
            scale=self.scale,
        )
        out = out.reshape(b, self.heads, windows, t_q, self.head_dim)
        out = out.transpose(1, 3).reshape(b, -1, self.dim_out)  # (B, T_q * windows, dim_out)
        return self.proj(out)
