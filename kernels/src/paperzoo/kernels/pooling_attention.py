"""MViT pooling attention (Multi-Head Pooling Attention, MHPA), with MViTv2's additions.

Papers: "Multiscale Vision Transformers", Haoqi Fan, Bo Xiong, Karttikeya Mangalam, Yanghao Li,
Zhicheng Yan, Jitendra Malik, Christoph Feichtenhofer, ICCV 2021, arXiv 2104.11227; and
"MViTv2: Improved Multiscale Vision Transformers for Classification and Detection", Yanghao Li,
Chao-Yuan Wu, Haoqi Fan, Karttikeya Mangalam, Bo Xiong, Jitendra Malik, Christoph
Feichtenhofer, CVPR 2022, arXiv 2112.01526.
Code followed: facebookresearch/SlowFast ``slowfast/models/attention.py``
(``MultiScaleAttention``, ``attention_pool``, ``cal_rel_pos_spatial``/``_temporal``); checked
for parity against torchvision's ``torchvision.models.video.mvit.MultiscaleAttention``.

Q, K and V are pooled over the (T, H, W) token grid (a depthwise strided Conv3d followed by a
LayerNorm, or max/avg pooling), attention runs between the pooled sequences (through
:func:`paperzoo.kernels.attention`, so it gets the fastest backend), and MViTv2 adds the pooled
query back to the output ("residual pooling") and a decomposed relative-position bias.

Token layout (as SlowFast, pytorchvideo and torchvision): (B, N, C) with N = [cls] + T·H·W in
T, H, W row-major order; the cls token, when present, bypasses pooling and is concatenated back
before the norm. Parameter names follow SlowFast (``qkv`` or ``q``/``k``/``v``, ``proj``,
``pool_q``/``norm_q``..., ``rel_pos_h``/``_w``/``_t``), the layout of the official checkpoints;
:func:`convert_torchvision_state_dict` maps torchvision's names onto them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.kernels.dispatch import attention

__all__ = ["MultiScaleAttention", "attention_pool", "convert_torchvision_state_dict"]

THW = tuple[int, int, int]


def attention_pool(
    x: torch.Tensor,
    pool: nn.Module | None,
    thw: Sequence[int],
    *,
    has_cls_embed: bool = True,
    norm: nn.Module | None = None,
) -> tuple[torch.Tensor, THW]:
    """Pool a token sequence over its (T, H, W) grid, keeping the cls token aside.

    Args:
        x: (B, heads, N, C) or (B, N, C), N = [1 +] T·H·W.
        pool: module on (B·heads, C, T, H, W); None returns ``x`` unchanged.
        thw: the grid (T, H, W) of the input tokens.
        has_cls_embed: the first token is a cls token that is not pooled.
        norm: applied over C after the cls token is concatenated back.

    Returns:
        The pooled tokens, shaped like ``x`` with N' = [1 +] T'·H'·W', and (T', H', W').
    """
    t, h, w = (int(s) for s in thw)
    if pool is None:
        return x, (t, h, w)
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(1)
    elif x.dim() != 4:
        raise ValueError(f"attention_pool expects (B, heads, N, C) or (B, N, C), got {x.shape}")
    if has_cls_embed:
        cls_tok, x = x[:, :, :1], x[:, :, 1:]
    b, heads, n, c = x.shape
    if n != t * h * w:
        raise ValueError(f"{n} tokens do not form the grid thw={(t, h, w)} (cls={has_cls_embed})")
    x = x.reshape(b * heads, t, h, w, c).permute(0, 4, 1, 2, 3)
    x = pool(x)
    out_thw = (x.shape[2], x.shape[3], x.shape[4])
    x = x.reshape(b, heads, c, -1).transpose(2, 3)
    if has_cls_embed:
        x = torch.cat((cls_tok, x), dim=2)
    if norm is not None:
        x = norm(x)
    if squeeze:
        x = x.squeeze(1)
    return x, out_thw


def _rel_pos_table(rel_pos: torch.Tensor, q_size: int, k_size: int) -> torch.Tensor:
    """Gather the (q_size, k_size, C) relative-position embeddings for one axis.

    The table has 2·max(q, k) - 1 rows (linearly interpolated when it does not); offsets are
    scaled so that a pooled axis indexes the same physical distances as the unpooled one.
    """
    length = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != length:
        rel_pos = F.interpolate(rel_pos.t().unsqueeze(0), size=length, mode="linear")[0].t()
    q_ratio = max(k_size / q_size, 1.0)
    k_ratio = max(q_size / k_size, 1.0)
    q_idx = torch.arange(q_size, device=rel_pos.device)[:, None] * q_ratio
    k_idx = torch.arange(k_size, device=rel_pos.device)[None, :] * k_ratio
    dist = q_idx - k_idx + (k_size - 1) * k_ratio
    return rel_pos[dist.long()]


class MultiScaleAttention(nn.Module):
    """Multi-head pooling attention (MViT / MViTv2), SlowFast's signature and parameter names.

    Args:
        dim: input channels.
        dim_out: output channels (also the attention width, heads x head dim).
        input_size: (T, H, W) of the input grid; only used to size the relative-position tables.
        num_heads: attention heads.
        qkv_bias: bias in the q/k/v projections.
        drop_rate: dropout after the output projection.
        kernel_q, kernel_kv: pooling kernels over (T, H, W) for q and for k, v.
        stride_q, stride_kv: pooling strides; kernel and stride all 1 means no pooling.
        norm_layer: norm after each conv pooling (MViT uses LayerNorm(eps=1e-6)).
        has_cls_embed: the first token is a cls token (not pooled, not position-biased).
        mode: ``"conv"`` (depthwise Conv3d shared by the heads), ``"conv_unshared"`` (one
            depthwise conv over all channels; needs ``pool_first``), ``"avg"`` or ``"max"``.
        pool_first: pool the input tokens before the q/k/v projections (MViTv1 option).
        rel_pos_spatial, rel_pos_temporal: MViTv2 decomposed relative-position bias.
        rel_pos_zero_init: start the relative-position tables at zero.
        residual_pooling: MViTv2 residual pooling connection (add the pooled q to the output).
        residual_with_cls_embed: with residual pooling, also add q's cls token (torchvision's
            option; SlowFast leaves the cls token out, the default here).
        separate_qkv: three projections ``q``, ``k``, ``v`` instead of one ``qkv`` (the layout
            of pytorchvideo's MViT and of ``pool_first``).

    Shapes: ``forward(x, thw)`` takes x (B, N, dim) with N = [1 +] T·H·W and thw = (T, H, W);
    returns (B, N', dim_out) and the pooled query grid (T', H', W').
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        input_size: Sequence[int],
        num_heads: int = 8,
        qkv_bias: bool = False,
        drop_rate: float = 0.0,
        kernel_q: Sequence[int] = (1, 1, 1),
        kernel_kv: Sequence[int] = (1, 1, 1),
        stride_q: Sequence[int] = (1, 1, 1),
        stride_kv: Sequence[int] = (1, 1, 1),
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        has_cls_embed: bool = True,
        mode: str = "conv",
        pool_first: bool = False,
        rel_pos_spatial: bool = False,
        rel_pos_temporal: bool = False,
        rel_pos_zero_init: bool = False,
        residual_pooling: bool = False,
        residual_with_cls_embed: bool = False,
        separate_qkv: bool = False,
    ) -> None:
        super().__init__()
        if dim_out % num_heads != 0:
            raise ValueError(f"dim_out {dim_out} must be divisible by num_heads {num_heads}")
        if mode not in ("conv", "conv_unshared", "avg", "max"):
            raise ValueError(f"unknown pooling mode {mode!r}; use conv, conv_unshared, avg or max")
        if mode == "conv_unshared" and not pool_first:
            raise ValueError("mode='conv_unshared' needs pool_first=True (as in SlowFast)")
        self.pool_first = pool_first
        self.separate_qkv = separate_qkv
        self.drop_rate = drop_rate
        self.num_heads = num_heads
        self.dim_out = dim_out
        head_dim = dim_out // num_heads
        self.scale = head_dim**-0.5
        self.has_cls_embed = has_cls_embed
        self.mode = mode
        self.residual_pooling = residual_pooling
        self.residual_with_cls_embed = residual_with_cls_embed

        if pool_first or separate_qkv:
            self.q = nn.Linear(dim, dim_out, bias=qkv_bias)
            self.k = nn.Linear(dim, dim_out, bias=qkv_bias)
            self.v = nn.Linear(dim, dim_out, bias=qkv_bias)
        else:
            self.qkv = nn.Linear(dim, dim_out * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim_out, dim_out)
        self.proj_drop = nn.Dropout(drop_rate) if drop_rate > 0.0 else nn.Identity()

        pool_q = math.prod(kernel_q) > 1 or math.prod(stride_q) > 1
        pool_kv = math.prod(kernel_kv) > 1 or math.prod(stride_kv) > 1
        self.pool_q = self.pool_k = self.pool_v = None
        self.norm_q = self.norm_k = self.norm_v = None
        if mode in ("avg", "max"):
            pool_cls = nn.MaxPool3d if mode == "max" else nn.AvgPool3d
            if pool_q:
                self.pool_q = pool_cls(kernel_q, stride_q, [s // 2 for s in kernel_q])
            if pool_kv:
                self.pool_k = pool_cls(kernel_kv, stride_kv, [s // 2 for s in kernel_kv])
                self.pool_v = pool_cls(kernel_kv, stride_kv, [s // 2 for s in kernel_kv])
        else:
            if pool_first:
                conv_dim = dim // num_heads if mode == "conv" else dim
            else:
                conv_dim = head_dim
            if pool_q:
                self.pool_q = _depthwise_conv3d(conv_dim, kernel_q, stride_q)
                self.norm_q = norm_layer(conv_dim)
            if pool_kv:
                self.pool_k = _depthwise_conv3d(conv_dim, kernel_kv, stride_kv)
                self.norm_k = norm_layer(conv_dim)
                self.pool_v = _depthwise_conv3d(conv_dim, kernel_kv, stride_kv)
                self.norm_v = norm_layer(conv_dim)

        self.rel_pos_spatial = rel_pos_spatial
        self.rel_pos_temporal = rel_pos_temporal
        if rel_pos_spatial:
            if input_size[1] != input_size[2]:
                raise ValueError(f"rel_pos_spatial needs a square grid, got {tuple(input_size)}")
            size = input_size[1]
            q_size = size // stride_q[1] if len(stride_q) > 0 else size
            kv_size = size // stride_kv[1] if len(stride_kv) > 0 else size
            length = 2 * max(q_size, kv_size) - 1
            self.rel_pos_h = nn.Parameter(torch.zeros(length, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(length, head_dim))
            if not rel_pos_zero_init:
                nn.init.trunc_normal_(self.rel_pos_h, std=0.02)
                nn.init.trunc_normal_(self.rel_pos_w, std=0.02)
        if rel_pos_temporal:
            self.rel_pos_t = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
            if not rel_pos_zero_init:
                nn.init.trunc_normal_(self.rel_pos_t, std=0.02)

    def _project(self, x: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
        b, n, _ = x.shape
        return linear(x).reshape(b, n, self.num_heads, -1).transpose(1, 2)

    def _rel_pos_bias(self, q: torch.Tensor, q_thw: THW, k_thw: THW) -> torch.Tensor:
        """Decomposed relative-position bias (B, heads, Nq, Nk); zero on the cls row/column."""
        sp = 1 if self.has_cls_embed else 0
        b, heads, _, c = q.shape
        (qt, qh, qw), (kt, kh, kw) = q_thw, k_thw
        r_q = q[:, :, sp:].reshape(b, heads, qt, qh, qw, c)
        bias = q.new_zeros(())
        if self.rel_pos_spatial:
            table_h = _rel_pos_table(self.rel_pos_h, qh, kh)  # (qh, kh, c)
            table_w = _rel_pos_table(self.rel_pos_w, qw, kw)  # (qw, kw, c)
            rel_h = torch.einsum("bnthwc,hkc->bnthwk", r_q, table_h)
            rel_w = torch.einsum("bnthwc,wkc->bnthwk", r_q, table_w)
            bias = bias + rel_h[..., None, :, None] + rel_w[..., None, None, :]
        if self.rel_pos_temporal:
            table_t = _rel_pos_table(self.rel_pos_t, qt, kt)  # (qt, kt, c)
            rel_t = torch.einsum("bnthwc,tkc->bnthwk", r_q, table_t)
            bias = bias + rel_t[..., :, None, None]
        bias = bias.expand(b, heads, qt, qh, qw, kt, kh, kw)
        bias = bias.reshape(b, heads, qt * qh * qw, kt * kh * kw)
        return F.pad(bias, (sp, 0, sp, 0))

    def forward(self, x: torch.Tensor, thw: Sequence[int]) -> tuple[torch.Tensor, THW]:
        b, n, _ = x.shape
        if self.pool_first:
            fold = 1 if self.mode == "conv_unshared" else self.num_heads
            q = k = v = x.reshape(b, n, fold, -1).transpose(1, 2)
        elif self.separate_qkv:
            q, k, v = self._project(x, self.q), self._project(x, self.k), self._project(x, self.v)
        else:
            qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)

        cls = self.has_cls_embed
        q, q_thw = attention_pool(q, self.pool_q, thw, has_cls_embed=cls, norm=self.norm_q)
        k, k_thw = attention_pool(k, self.pool_k, thw, has_cls_embed=cls, norm=self.norm_k)
        v, _ = attention_pool(v, self.pool_v, thw, has_cls_embed=cls, norm=self.norm_v)

        if self.pool_first:
            q = self._project(q.transpose(1, 2).reshape(b, q.shape[2], -1), self.q)
            k = self._project(k.transpose(1, 2).reshape(b, k.shape[2], -1), self.k)
            v = self._project(v.transpose(1, 2).reshape(b, v.shape[2], -1), self.v)

        bias = None
        if self.rel_pos_spatial or self.rel_pos_temporal:
            bias = self._rel_pos_bias(q, q_thw, k_thw).to(q.dtype)
        out = attention(q, k, v, attn_mask=bias, scale=self.scale)

        if self.residual_pooling:
            if cls and not self.residual_with_cls_embed:
                out = torch.cat((out[:, :, :1], out[:, :, 1:] + q[:, :, 1:]), dim=2)
            else:
                out = out + q
        out = out.transpose(1, 2).reshape(b, -1, self.dim_out)
        return self.proj_drop(self.proj(out)), q_thw


def _depthwise_conv3d(channels: int, kernel: Sequence[int], stride: Sequence[int]) -> nn.Conv3d:
    return nn.Conv3d(
        channels,
        channels,
        tuple(kernel),
        stride=tuple(stride),
        padding=tuple(s // 2 for s in kernel),
        groups=channels,
        bias=False,
    )


def convert_torchvision_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a torchvision ``MultiscaleAttention`` state dict to :class:`MultiScaleAttention`.

    torchvision wraps the output projection in ``project`` (a Sequential) and each pooling in a
    ``Pool`` module (``pool_q.pool``, ``pool_q.norm_act.0``); SlowFast, and this module, use flat
    names (``proj``, ``pool_q``, ``norm_q``). Keys may carry a prefix (``blocks.3.attn.``).
    """
    renames = [("project.0.", "proj.")]
    for part in ("q", "k", "v"):
        renames += [
            (f"pool_{part}.pool.", f"pool_{part}."),
            (f"pool_{part}.norm_act.0.", f"norm_{part}."),
        ]
    out = {}
    for key, value in state.items():
        new = key
        for old, replacement in renames:
            if old in new:
                new = new.replace(old, replacement)
                break
        out[new] = value
    return out
