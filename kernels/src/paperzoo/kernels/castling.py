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
S = softmax(QKᵀ/√d) on the raw q, k, it adds (M ⊙ S) V with the mask M = [S > τ] (τ = 0.02 in the
official code), before the output normalisation, as the official code does.

Driving the mask to zero, and "castling" (our design, not the official code's): the paper's
abstract says the masks "are regularized to gradually become zeros", and the official code holds
only the constant-threshold branch, no regulariser. Here:

1. :func:`sparse_threshold_schedule` raises τ from 0.02 to 1 over training. Softmax weights are
   at most 1 and the mask is a strict ``S > τ``, so from τ = 1 on M ⊙ S is exactly zero (not just
   small): the branch then contributes nothing, bit for bit.
2. Optionally, a penalty: each block keeps the mean masked mass Σⱼ (M ⊙ S)ᵢⱼ of its query rows
   (in [0, 1]) in ``sparse_mass`` during training; :func:`sparse_mass` averages it over a model,
   for the loss.
3. :func:`castle` switches every block to the linear-only path (``sparse_reg = False``), the
   inference model; with the mask at zero it changes no output (tested).

The threshold is a plain attribute, not a buffer, so state dicts keep the official names.

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
    "castle",
    "enable_sparse_branch",
    "linear_angular_attention",
    "linear_angular_attention_reference",
    "linear_angular_term",
    "masked_softmax_attention",
    "set_sparse_threshold",
    "sparse_mass",
    "sparse_threshold_schedule",
]

OFFICIAL_SPARSE_THRESHOLD = 0.02  # attention.py: ``mask = attn > 0.02``


def linear_angular_term(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, v_self: torch.Tensor | None = None
) -> torch.Tensor:
    """0.5·v_self + (1/π)·q̂ (k̂ᵀ v), before the output normalisation.

    Args:
        q: (B, H, Nq, D); k: (B, H, Nk, D); v: (B, H, Nk, Dv).
        v_self: (B, H, Nq, Dv), the value each query token adds to itself (the 0.5 term); the
            official self-attention has Nq = Nk and uses ``v``, the default. A pooled model
            whose keys are pooled differently from its queries passes values at the queries'
            resolution here.

    Returns:
        (B, H, Nq, Dv).
    """
    if v_self is None:
        if q.shape[-2] != v.shape[-2]:
            raise ValueError(
                "linear-angular attention adds each query's own value (0.5·v): q and v need the "
                f"same length, got {q.shape[-2]} and {v.shape[-2]}; pass v_self at q's length"
            )
        v_self = v
    if k.shape[-2] != v.shape[-2] or v_self.shape[-2] != q.shape[-2]:
        raise ValueError(
            f"lengths do not fit: q {q.shape[-2]}, k {k.shape[-2]}, v {v.shape[-2]}, "
            f"v_self {v_self.shape[-2]} (need k = v and v_self = q)"
        )
    q_hat = F.normalize(q, dim=-1)
    k_hat = F.normalize(k, dim=-1)
    context = k_hat.transpose(-2, -1) @ v  # (B, H, D, Dv): the whole sequence, summarised once
    return 0.5 * v_self + (q_hat @ context) / math.pi


def linear_angular_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """normalize(0.5·v + (1/π)·q̂ (k̂ᵀ v)) in linear time, the core of Castling-ViT.

    Args:
        q, k: (B, H, N, D) queries and keys (normalised here, per head and token).
        v: (B, H, N, Dv) values.

    Returns:
        (B, H, N, Dv), each token L2-normalised over Dv.
    """
    return F.normalize(linear_angular_term(q, k, v), dim=-1)


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


def masked_softmax_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The auxiliary branch: (M ⊙ S) V with S = softmax(q kᵀ · scale), M = [S > threshold].

    Args:
        q: (B, H, Nq, D); k: (B, H, Nk, D); v: (B, H, Nk, Dv) (raw, not normalised).
        scale: the softmax temperature (1/√D in the official code).
        threshold: the mask threshold τ; with τ >= 1 the output is exactly zero.

    Returns:
        ((B, H, Nq, Dv) branch output, scalar mean over (B, H, Nq) of the kept mass Σⱼ M⊙S,
        differentiable through S, for a penalty).
    """
    weights = ((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1)
    kept = weights * (weights > threshold)
    return kept @ v, kept.sum(dim=-1).mean()


def sparse_threshold_schedule(
    progress: float,
    *,
    start: float = OFFICIAL_SPARSE_THRESHOLD,
    begin: float = 0.0,
    end: float = 0.75,
) -> float:
    """Mask threshold τ at ``progress`` (fraction of training done, 0..1): our design.

    τ stays at ``start`` until ``begin``, rises along a half-cosine to 1.0 at ``end`` and stays
    at 1.0 after (where the mask is exactly zero, see :func:`masked_softmax_attention`).
    """
    if not 0.0 <= begin < end <= 1.0:
        raise ValueError(f"need 0 <= begin < end <= 1, got begin={begin}, end={end}")
    if progress >= end:
        return 1.0
    if progress <= begin:
        return start
    ramp = 0.5 - 0.5 * math.cos(math.pi * (progress - begin) / (end - begin))
    return start + (1.0 - start) * ramp


def _sparse_modules(model: nn.Module) -> list[nn.Module]:
    """Modules with a Castling auxiliary branch (``sparse_reg`` flag and a ``castle`` method)."""
    return [
        m
        for m in model.modules()
        if hasattr(m, "sparse_reg") and callable(getattr(m, "castle", None))
    ]


def set_sparse_threshold(model: nn.Module, threshold: float) -> int:
    """Set τ in every Castling attention of ``model``; returns how many there are."""
    blocks = _sparse_modules(model)
    for m in blocks:
        m.sparse_threshold = float(threshold)
    return len(blocks)


def sparse_mass(model: nn.Module) -> torch.Tensor | None:
    """Mean kept masked mass over the blocks whose branch ran in the last training forward.

    None when no branch ran (castled, eval mode, or no Castling attention).
    """
    masses = [m.sparse_mass for m in _sparse_modules(model) if m.sparse_mass is not None]
    return torch.stack(masses).mean() if masses else None


def castle(model: nn.Module) -> int:
    """Switch every Castling attention of ``model`` to its linear-only inference path.

    Returns the number of blocks switched. Parameters are untouched (the branch has none).
    """
    blocks = _sparse_modules(model)
    for m in blocks:
        m.castle()
    return len(blocks)


def enable_sparse_branch(model: nn.Module, threshold: float = OFFICIAL_SPARSE_THRESHOLD) -> int:
    """Turn the auxiliary branch (back) on in every Castling attention of ``model``, at
    ``threshold``; returns how many there are. For measuring what castling changes."""
    blocks = _sparse_modules(model)
    for m in blocks:
        m.sparse_reg = True
        m.sparse_threshold = float(threshold)
    return len(blocks)


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
        sparse_threshold: keep softmax weights above this in that branch (0.02 officially);
            a schedule may raise it to 1 (branch exactly zero), see
            :func:`sparse_threshold_schedule`.

    Extra keyword arguments that timm's ``Block`` passes to its ``attn_layer`` (``qk_norm``,
    ``norm_layer``, ...) are not accepted here; see ``paperzoo.castlingvit`` for the adapter.
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
        sparse_threshold: float = OFFICIAL_SPARSE_THRESHOLD,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.sparse_reg = sparse_reg
        self.sparse_threshold = sparse_threshold
        self.sparse_mass: torch.Tensor | None = None  # last training forward's kept mass
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
        out = linear_angular_term(q, k, v)
        self.sparse_mass = None
        if self.sparse_reg:
            branch, mass = masked_softmax_attention(
                q, k, v, scale=self.scale, threshold=self.sparse_threshold
            )
            out = out + branch
            if self.training:
                self.sparse_mass = mass
        out = F.normalize(out, dim=-1)
        out = out + self.dconv(v)  # heads are the conv's channels, tokens its height
        out = out.transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(out))

    def castle(self) -> None:
        """Drop the auxiliary branch for good: the linear-only inference block."""
        self.sparse_reg = False
        self.sparse_mass = None

    def extra_repr(self) -> str:
        branch = f"sparse_threshold={self.sparse_threshold:g}" if self.sparse_reg else "linear-only"
        return f"num_heads={self.num_heads}, {branch}"
