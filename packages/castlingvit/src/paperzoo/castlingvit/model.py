"""Castling-ViT models: DeiT-style ViTs and MViTv2 with linear-angular attention.

Paper: "Castling-ViT: Compressing Self-Attention via Switching Towards Linear-Angular Attention
During Vision Transformer Inference", Haoran You, Yunyang Xiong, Xiaoliang Dai, Bichen Wu,
Peizhao Zhang, Haoqi Fan, Peter Vajda, Yingyan Lin. CVPR 2023, arXiv 2211.10526.
Code followed: GATECH-EIC/Castling-ViT ``attention.py`` (``LinAngularAttention``, the only code
released); the attention is :class:`paperzoo.kernels.LinearAngularAttention`, checked term for
term against it. The backbones are not in the official release:

- Castling-DeiT: timm's ``VisionTransformer`` in DeiT's sizes (DeiT, Touvron et al. 2021,
  arXiv 2012.12877: T 192/12/3, S 384/12/6, B 768/12/12, patch 16, 224², cls token) with the
  attention swapped through ``attn_layer`` (:class:`CastlingAttention`, a thin adapter to the
  signature timm's ``Block`` calls). Everything else is timm's DeiT, so parameter names are
  timm's (``blocks.i.attn.qkv`` / ``proj`` / ``dconv``). The softmax twins ``deit_*`` are the
  same builder with timm's attention (torch SDPA).
- Castling-MViTv2: paperzoo-mvit's ``MViT`` builder with ``attn_layer=``
  :class:`CastlingMultiScaleAttention`: MViTv2's pooled q/k/v, linear-angular attention between
  them. Our choices, not the paper's (whose text we could not read): when the keys and values
  are pooled more than the queries (every MViTv2 block: kv stride 4-1 adaptive), the 0.5·v and
  DWConv(v) terms use the values at the *queries'* resolution, v pooled by the queries' own
  pooling (the same conv and norm as q, no new parameters; v itself where q is not pooled); and
  the decomposed relative-position bias is dropped (the linear kernel has no logits to bias), so
  ``castling_mvitv2_*`` are built with ``rel_pos_spatial=False``.

Every Castling block carries the training-only auxiliary masked softmax branch when built with
``sparse_reg=True`` (the default of every factory here: the model one trains);
:func:`paperzoo.kernels.castling.castle` switches a trained model to the linear-only inference
model. MACs in the registry are those of the castled model.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.kernels import LinearAngularAttention, MultiScaleAttention, attention_pool
from paperzoo.kernels.castling import (
    OFFICIAL_SPARSE_THRESHOLD,
    castle,
    linear_angular_term,
    masked_softmax_attention,
    set_sparse_threshold,
)

__all__ = [
    "CastlingAttention",
    "CastlingMultiScaleAttention",
    "castling_deit_base",
    "castling_deit_small",
    "castling_deit_tiny",
    "castling_mvitv2_base",
    "castling_mvitv2_small",
    "castling_mvitv2_tiny",
    "castling_vit_tiny_mnist",
    "deit_base",
    "deit_small",
    "deit_tiny",
    "vit_tiny_mnist",
]


# -- attention blocks ------------------------------------------------------------------------


class CastlingAttention(LinearAngularAttention):
    """:class:`~paperzoo.kernels.LinearAngularAttention` with the constructor and ``forward``
    that timm's ``vision_transformer.Block`` calls (``attn_layer(dim, num_heads=, qkv_bias=,
    qk_norm=, scale_norm=, proj_bias=, attn_drop=, proj_drop=, norm_layer=, device=, dtype=)``,
    then ``attn(x, attn_mask=, is_causal=)``). Options the official block does not have
    (q/k norms, an attention-output norm, no projection bias, masks) are refused rather than
    silently ignored. ``forward(x (B, N, C)) -> (B, N, C)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        qk_norm: bool = False,
        scale_norm: bool = False,
        proj_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        norm_layer: Any = None,
        *,
        res_kernel_size: int = 9,
        sparse_reg: bool = True,
        sparse_threshold: float = OFFICIAL_SPARSE_THRESHOLD,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if qk_norm or scale_norm or not proj_bias:
            raise ValueError(
                "CastlingAttention has no q/k norm, no output norm and always a projection bias "
                f"(got qk_norm={qk_norm}, scale_norm={scale_norm}, proj_bias={proj_bias})"
            )
        super().__init__(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
            proj_drop=proj_drop, res_kernel_size=res_kernel_size, sparse_reg=sparse_reg,
            sparse_threshold=sparse_threshold,
        )  # fmt: skip
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        if attn_mask is not None or is_causal:
            raise ValueError("linear-angular attention takes no attention mask and is not causal")
        return super().forward(x)


class CastlingMultiScaleAttention(MultiScaleAttention):
    """MViTv2 pooling attention with linear-angular attention between the pooled q, k, v.

    Same constructor as :class:`paperzoo.kernels.MultiScaleAttention` (what ``MViT`` passes as
    ``attn_layer``), plus ``res_kernel_size``, ``sparse_reg`` and ``sparse_threshold`` as in
    :class:`~paperzoo.kernels.LinearAngularAttention`, and its parameter names plus ``dconv``
    (Conv2d(heads, heads, (9, 1), groups=heads), along the query tokens). Per head::

        v_q = v pooled like q (v itself when q is not pooled)
        out = normalize(0.5·v_q + (1/π)·q̂ (k̂ᵀ v) [+ (M⊙S) v]) + DWConv(v_q)  [+ q, residual pooling]

    with q, k, v pooled as in MViTv2 (see the module docstring for why v_q). Only the merged
    ``qkv`` projection, without relative positions and without ``pool_first``.
    ``forward(x (B, N, dim), thw) -> (B, N', dim_out), thw'``.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        input_size: Any,
        num_heads: int = 8,
        *,
        res_kernel_size: int = 9,
        sparse_reg: bool = True,
        sparse_threshold: float = OFFICIAL_SPARSE_THRESHOLD,
        **kwargs: Any,
    ) -> None:
        for flag in ("rel_pos_spatial", "rel_pos_temporal", "pool_first", "separate_qkv"):
            if kwargs.get(flag):
                raise ValueError(
                    f"CastlingMultiScaleAttention does not support {flag}=True (linear-angular "
                    "attention has no logits for a relative-position bias; build the MViT with "
                    "rel_pos_spatial=False)"
                )
        super().__init__(dim, dim_out, input_size, num_heads=num_heads, **kwargs)
        self.sparse_reg = sparse_reg
        self.sparse_threshold = sparse_threshold
        self.sparse_mass: torch.Tensor | None = None
        self.dconv = nn.Conv2d(
            num_heads,
            num_heads,
            kernel_size=(res_kernel_size, 1),
            padding=(res_kernel_size // 2, 0),
            bias=False,
            groups=num_heads,
        )

    def forward(self, x: torch.Tensor, thw: Any) -> tuple[torch.Tensor, Any]:
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q_in, k, v_in = qkv.unbind(0)
        cls = self.has_cls_embed
        q, q_thw = attention_pool(q_in, self.pool_q, thw, has_cls_embed=cls, norm=self.norm_q)
        k, _ = attention_pool(k, self.pool_k, thw, has_cls_embed=cls, norm=self.norm_k)
        v, _ = attention_pool(v_in, self.pool_v, thw, has_cls_embed=cls, norm=self.norm_v)
        # The value each query adds to itself: v at the queries' resolution (our choice).
        v_q, _ = attention_pool(v_in, self.pool_q, thw, has_cls_embed=cls, norm=self.norm_q)

        out = linear_angular_term(q, k, v, v_self=v_q)
        self.sparse_mass = None
        if self.sparse_reg:
            branch, mass = masked_softmax_attention(
                q, k, v, scale=self.scale, threshold=self.sparse_threshold
            )
            out = out + branch
            if self.training:
                self.sparse_mass = mass
        out = F.normalize(out, dim=-1) + self.dconv(v_q)

        if self.residual_pooling:
            if cls and not self.residual_with_cls_embed:
                out = torch.cat((out[:, :, :1], out[:, :, 1:] + q[:, :, 1:]), dim=2)
            else:
                out = out + q
        out = out.transpose(1, 2).reshape(b, -1, self.dim_out)
        return self.proj_drop(self.proj(out)), q_thw

    def castle(self) -> None:
        """Drop the auxiliary branch for good: the linear-only inference block."""
        self.sparse_reg = False
        self.sparse_mass = None


# -- DeiT-style ViTs (timm's VisionTransformer) ----------------------------------------------

_DEIT = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
}


def _vit(castling: bool, *, sparse_reg: bool = True,
         sparse_threshold: float = OFFICIAL_SPARSE_THRESHOLD, **kwargs: Any) -> nn.Module:  # fmt: skip
    from timm.models.vision_transformer import VisionTransformer

    if not castling:
        return VisionTransformer(**kwargs)
    # timm's Block wants a class (it runs issubclass on attn_layer), so the branch options are
    # set on the built blocks rather than bound with functools.partial.
    model = VisionTransformer(attn_layer=CastlingAttention, **kwargs)
    if not sparse_reg:
        castle(model)
    set_sparse_threshold(model, sparse_threshold)
    return model


def _deit(size: str, castling: bool, **kwargs: Any) -> nn.Module:
    cfg = dict(img_size=224, patch_size=16, num_classes=1000, **_DEIT[size])
    return _vit(castling, **{**cfg, **kwargs})


def castling_deit_tiny(**kwargs: Any) -> nn.Module:
    """Castling-DeiT-T: DeiT-T (192 wide, 12 blocks, 3 heads, patch 16, 224²), linear-angular."""
    return _deit("tiny", True, **kwargs)


def castling_deit_small(**kwargs: Any) -> nn.Module:
    """Castling-DeiT-S: DeiT-S (384 wide, 12 blocks, 6 heads), linear-angular attention."""
    return _deit("small", True, **kwargs)


def castling_deit_base(**kwargs: Any) -> nn.Module:
    """Castling-DeiT-B: DeiT-B (768 wide, 12 blocks, 12 heads), linear-angular attention."""
    return _deit("base", True, **kwargs)


def deit_tiny(**kwargs: Any) -> nn.Module:
    """DeiT-T with softmax attention (timm ``deit_tiny_patch16_224``'s architecture)."""
    return _deit("tiny", False, **kwargs)


def deit_small(**kwargs: Any) -> nn.Module:
    """DeiT-S with softmax attention (timm ``deit_small_patch16_224``)."""
    return _deit("small", False, **kwargs)


def deit_base(**kwargs: Any) -> nn.Module:
    """DeiT-B with softmax attention (timm ``deit_base_patch16_224``)."""
    return _deit("base", False, **kwargs)


# -- Castling-MViTv2 (paperzoo-mvit's builder) -----------------------------------------------


def _castling_mvitv2(factory: str, *, sparse_reg: bool = True,
                     sparse_threshold: float = OFFICIAL_SPARSE_THRESHOLD,
                     res_kernel_size: int = 9, **kwargs: Any) -> nn.Module:  # fmt: skip
    from paperzoo.mvit import model as mvit_models

    attn = partial(
        CastlingMultiScaleAttention,
        sparse_reg=sparse_reg,
        sparse_threshold=sparse_threshold,
        res_kernel_size=res_kernel_size,
    )
    kwargs.setdefault("rel_pos_spatial", False)
    return getattr(mvit_models, factory)(attn_layer=attn, **kwargs)


def castling_mvitv2_tiny(**kwargs: Any) -> nn.Module:
    """Castling-MViTv2-T: ``mvitv2_tiny`` (1-2-5-2) with linear-angular pooling attention."""
    return _castling_mvitv2("mvitv2_tiny", **kwargs)


def castling_mvitv2_small(**kwargs: Any) -> nn.Module:
    """Castling-MViTv2-S: ``mvitv2_small`` (1-2-11-2) with linear-angular pooling attention."""
    return _castling_mvitv2("mvitv2_small", **kwargs)


def castling_mvitv2_base(**kwargs: Any) -> nn.Module:
    """Castling-MViTv2-B: ``mvitv2_base`` (2-3-16-3) with linear-angular pooling attention."""
    return _castling_mvitv2("mvitv2_base", **kwargs)


# -- CPU-sized models for the tiny recipe (not from the paper) -------------------------------

_TINY_MNIST = dict(
    img_size=28, patch_size=2, in_chans=1, num_classes=10, embed_dim=48, depth=4, num_heads=2
)


def vit_tiny_mnist(**kwargs: Any) -> nn.Module:
    """Not from the paper: a 4-block, 48-wide DeiT-style ViT on 28² MNIST with 2×2 patches
    (196 tokens + cls), softmax attention: the tiny recipe's baseline."""
    return _vit(False, **{**_TINY_MNIST, **kwargs})


def castling_vit_tiny_mnist(**kwargs: Any) -> nn.Module:
    """Not from the paper: :func:`vit_tiny_mnist` with Castling (linear-angular) attention."""
    return _vit(True, **{**_TINY_MNIST, **kwargs})
