"""Multiscale Vision Transformers (MViT) and MViTv2, for video and images.

Papers:
- Fan, Xiong, Mangalam, Li, Yan, Malik, Feichtenhofer. "Multiscale Vision Transformers".
  ICCV 2021, arXiv:2104.11227.
- Li, Wu, Fan, Mangalam, Xiong, Malik, Feichtenhofer. "MViTv2: Improved Multiscale Vision
  Transformers for Classification and Detection". CVPR 2022, arXiv:2112.01526.

Follows the official code, PySlowFast (facebookresearch/SlowFast, ``slowfast/models/
video_model_builder.py`` class ``MViT``, ``attention.py``, ``common.py``; projects/mvit and
projects/mvitv2) and, for the image MViTv2, facebookresearch/mvit. The constructor takes the same
knobs as PySlowFast's ``cfg.MVIT`` (``DIM_MUL``, ``HEAD_MUL``, ``POOL_Q_STRIDE``,
``POOL_KV_STRIDE_ADAPTIVE``, ``POOL_KVQ_KERNEL``, ...), and parameter names are PySlowFast's, so
an official checkpoint needs no renaming beyond what :mod:`paperzoo.mvit.convert` documents.

The model is a stack of transformer blocks whose multi-head *pooling* attention (MHPA) pools the
query (reducing the space-time resolution, with channels expanded at the same blocks) and the
keys/values (cheaper attention). MViT (v1): conv patch embedding (3, 7, 7) / (2, 4, 4), a cls
token, separate space and time absolute position embeddings. MViTv2 adds the decomposed relative
position bias, residual pooling (the pooled query is added to the attention output) and channel
expansion inside the attention (``dim_mul_in_att``).

The pooling attention itself is ``paperzoo.kernels.MultiScaleAttention`` (the shared kernels
package; PySlowFast's constructor and parameter names); any other ``attn_layer`` with that
constructor can be passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from timm.layers import DropPath, Mlp
from torch import nn

from paperzoo.kernels import MultiScaleAttention
from paperzoo.kernels.layers import round_width, trunc_normal_init_

__all__ = [
    "MViT",
    "MultiScaleBlock",
    "PatchEmbed",
    "TransformerHead",
    "mvit_base_16x4",
    "mvit_base_32x3",
    "mvit_base_224",
    "mvit_tiny_video",
    "mvitv2_base",
    "mvitv2_small",
    "mvitv2_small_16x4",
    "mvitv2_tiny",
    "round_width",
    "vit_tiny_video",
]


# -- blocks ----------------------------------------------------------------------------------


class PatchEmbed(nn.Module):
    """Conv patch embedding: (B, C, T, H, W) video or (B, C, H, W) image -> (B, N, dim), (T, H, W).

    ``proj`` is a Conv3d (video; MViT-B uses kernel (3, 7, 7), stride (2, 4, 4), padding (1, 3, 3))
    or a Conv2d (images, ``conv_2d``; kernel 7, stride 4, padding 3), as in PySlowFast.
    """

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        kernel: Sequence[int],
        stride: Sequence[int],
        padding: Sequence[int],
        conv_2d: bool = False,
    ) -> None:
        super().__init__()
        conv = nn.Conv2d if conv_2d else nn.Conv3d
        self.conv_2d = conv_2d
        self.proj = conv(dim_in, dim_out, tuple(kernel), tuple(stride), tuple(padding))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        x = self.proj(x)
        thw = (1, *x.shape[2:]) if self.conv_2d else tuple(x.shape[2:])
        return x.flatten(2).transpose(1, 2), thw  # type: ignore[return-value]


class _SkipPool(nn.Module):
    """Max-pool the residual path of a q-pooling block, leaving the cls token untouched."""

    def __init__(self, stride: Sequence[int], has_cls: bool) -> None:
        super().__init__()
        kernel = [s + 1 if s > 1 else s for s in stride]
        self.pool = nn.MaxPool3d(kernel, tuple(stride), [k // 2 for k in kernel], ceil_mode=False)
        self.has_cls = has_cls

    def forward(self, x: torch.Tensor, thw: Sequence[int]) -> torch.Tensor:
        s = int(self.has_cls)
        cls_tok, tokens = x[:, :s], x[:, s:]
        b, _, c = tokens.shape
        tokens = tokens.transpose(1, 2).reshape(b, c, *thw)
        tokens = self.pool(tokens).flatten(2).transpose(1, 2)
        return torch.cat((cls_tok, tokens), dim=1) if s else tokens


class MultiScaleBlock(nn.Module):
    """One MViT block: pooling attention and MLP, each pre-norm with a residual.

    The residual of the attention is max-pooled when the query is (stride ``stride_q``), so both
    branches have the same resolution. When the width changes (``dim != dim_out``), a linear
    ``proj`` maps the normalised input of the MLP branch (v1) or of the attention branch
    (MViTv2, ``dim_mul_in_att``) to ``dim_out``. ``attn_norm_layer`` is the norm after each
    pooling (default: ``norm_layer``).

    ``forward(x (B, N, dim), thw) -> (B, N', dim_out), thw'``.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        *,
        input_size: Sequence[int],
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        kernel_q: Sequence[int] = (),
        kernel_kv: Sequence[int] = (),
        stride_q: Sequence[int] = (),
        stride_kv: Sequence[int] = (),
        mode: str = "conv",
        has_cls: bool = True,
        rel_pos_spatial: bool = False,
        rel_pos_temporal: bool = False,
        rel_pos_zero_init: bool = False,
        residual_pooling: bool = False,
        dim_mul_in_att: bool = False,
        attn_layer: Callable[..., nn.Module] | None = None,
        attn_norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.dim_out = dim_out
        self.dim_mul_in_att = dim_mul_in_att
        att_dim = dim_out if dim_mul_in_att else dim
        self.norm1 = norm_layer(dim)
        attn_layer = attn_layer or MultiScaleAttention
        self.attn = attn_layer(
            dim,
            att_dim,
            input_size=tuple(input_size),
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            kernel_q=tuple(kernel_q),
            kernel_kv=tuple(kernel_kv),
            stride_q=tuple(stride_q),
            stride_kv=tuple(stride_kv),
            norm_layer=attn_norm_layer or norm_layer,
            has_cls_embed=has_cls,
            mode=mode,
            rel_pos_spatial=rel_pos_spatial,
            rel_pos_temporal=rel_pos_temporal,
            rel_pos_zero_init=rel_pos_zero_init,
            residual_pooling=residual_pooling,
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(att_dim)
        self.mlp = Mlp(att_dim, int(att_dim * mlp_ratio), dim_out, act_layer=nn.GELU)
        self.proj = nn.Linear(dim, dim_out) if dim != dim_out else None
        self.pool_skip = (
            _SkipPool(stride_q, has_cls) if len(stride_q) and math.prod(stride_q) > 1 else None
        )

    def forward(
        self, x: torch.Tensor, thw: Sequence[int]
    ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        x_norm = self.norm1(x)
        x_block, thw_new = self.attn(x_norm, thw)
        if self.dim_mul_in_att and self.proj is not None:
            x = self.proj(x_norm)
        if self.pool_skip is not None:
            x = self.pool_skip(x, thw)
        x = x + self.drop_path(x_block)
        x_norm = self.norm2(x)
        x_mlp = self.mlp(x_norm)
        if not self.dim_mul_in_att and self.proj is not None:
            x = self.proj(x_norm)
        return x + self.drop_path(x_mlp), thw_new


class TransformerHead(nn.Module):
    """Dropout and a linear classifier (PySlowFast ``TransformerBasicHead`` minus its eval-time
    softmax: this head returns logits)."""

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.projection = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.dropout(x))


# -- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BlockSetting:
    dim: int
    dim_out: int
    num_heads: int
    kernel_q: tuple[int, ...]
    kernel_kv: tuple[int, ...]
    stride_q: tuple[int, ...]
    stride_kv: tuple[int, ...]


def _block_settings(
    *,
    depth: int,
    embed_dim: int,
    num_heads: int,
    dim_mul: Sequence[Sequence[float]],
    head_mul: Sequence[Sequence[float]],
    pool_q_stride: Sequence[Sequence[int]],
    pool_kv_stride: Sequence[Sequence[int]] | None,
    pool_kv_stride_adaptive: Sequence[int] | None,
    pool_kvq_kernel: Sequence[int] | None,
    dim_mul_in_att: bool,
) -> list[_BlockSetting]:
    """Per-block widths, heads and pooling, computed exactly as PySlowFast's ``MViT.__init__``."""
    dim_muls = [1.0] * (depth + 1)
    head_muls = [1.0] * (depth + 1)
    for i, m in dim_mul:
        dim_muls[int(i)] = float(m)
    for i, m in head_mul:
        head_muls[int(i)] = float(m)

    def default_kernel(stride: Sequence[int]) -> tuple[int, ...]:
        return tuple(s + 1 if s > 1 else s for s in stride)

    stride_q: list[tuple[int, ...]] = [() for _ in range(depth)]
    kernel_q: list[tuple[int, ...]] = [() for _ in range(depth)]
    for entry in pool_q_stride:
        i, stride = int(entry[0]), tuple(int(s) for s in entry[1:])
        stride_q[i] = stride
        kernel_q[i] = (
            tuple(pool_kvq_kernel) if pool_kvq_kernel is not None else default_kernel(stride)
        )

    if pool_kv_stride_adaptive is not None:
        if pool_kv_stride is not None:
            raise ValueError("give pool_kv_stride or pool_kv_stride_adaptive, not both")
        current = list(pool_kv_stride_adaptive)
        pool_kv_stride = []
        for i in range(depth):
            if stride_q[i]:
                current = [max(c // s, 1) for c, s in zip(current, stride_q[i])]
            pool_kv_stride.append([i, *current])
    stride_kv: list[tuple[int, ...]] = [() for _ in range(depth)]
    kernel_kv: list[tuple[int, ...]] = [() for _ in range(depth)]
    for entry in pool_kv_stride or ():
        i, stride = int(entry[0]), tuple(int(s) for s in entry[1:])
        stride_kv[i] = stride
        kernel_kv[i] = (
            tuple(pool_kvq_kernel) if pool_kvq_kernel is not None else default_kernel(stride)
        )

    settings = []
    dim = embed_dim
    heads = num_heads
    for i in range(depth):
        heads = round_width(heads, head_muls[i])
        if dim_mul_in_att:
            dim_out = round_width(dim, dim_muls[i], divisor=round_width(heads, head_muls[i]))
        else:
            dim_out = round_width(
                dim, dim_muls[i + 1], divisor=round_width(heads, head_muls[i + 1])
            )
        settings.append(
            _BlockSetting(dim, dim_out, heads, kernel_q[i], kernel_kv[i], stride_q[i], stride_kv[i])
        )
        dim = dim_out
    return settings


class MViT(nn.Module):
    """Multiscale Vision Transformer (v1 and v2), video or image.

    Keyword arguments mirror PySlowFast's ``cfg.MVIT`` (see the module docstring), plus
    ``pool_norm_eps``: the LayerNorm eps after each q/k/v pooling. The MViT (v1) release of
    PySlowFast built those norms with ``nn.LayerNorm``'s default 1e-5 (kept by pytorchvideo's port,
    and the v1 factories here); MViTv2 and torchvision's ``mvit_v1_b`` port use 1e-6. Input is
    (B, C, T, H, W) float for video models and (B, C, H, W) for image models (``patch_2d``),
    at the size the model was built for (``temporal_size`` x ``spatial_size``\\ ^2). Output is
    (B, num_classes) logits.
    """

    def __init__(
        self,
        *,
        spatial_size: int = 224,
        temporal_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 400,
        embed_dim: int = 96,
        num_heads: int = 1,
        depth: int = 16,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        patch_kernel: Sequence[int] = (3, 7, 7),
        patch_stride: Sequence[int] = (2, 4, 4),
        patch_padding: Sequence[int] = (1, 3, 3),
        patch_2d: bool = False,
        cls_embed: bool = True,
        use_abs_pos: bool = True,
        sep_pos_embed: bool = True,
        rel_pos_spatial: bool = False,
        rel_pos_temporal: bool = False,
        rel_pos_zero_init: bool = False,
        residual_pooling: bool = False,
        dim_mul_in_att: bool = False,
        dim_mul: Sequence[Sequence[float]] = (),
        head_mul: Sequence[Sequence[float]] = (),
        pool_q_stride: Sequence[Sequence[int]] = (),
        pool_kv_stride: Sequence[Sequence[int]] | None = None,
        pool_kv_stride_adaptive: Sequence[int] | None = None,
        pool_kvq_kernel: Sequence[int] | None = None,
        mode: str = "conv",
        drop_path_rate: float = 0.0,
        dropout_rate: float = 0.0,
        head_dropout: float = 0.5,
        pool_norm_eps: float = 1e-6,
        norm_layer: Callable[[int], nn.Module] | None = None,
        attn_layer: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        attn_norm_layer = partial(nn.LayerNorm, eps=pool_norm_eps)
        if patch_2d and temporal_size != 1:
            raise ValueError(f"an image model (patch_2d) has temporal_size 1, got {temporal_size}")
        self.num_classes = num_classes
        self.cls_embed = cls_embed
        self.sep_pos_embed = sep_pos_embed
        self.patch_2d = patch_2d
        stride3 = (1, *patch_stride) if patch_2d else tuple(patch_stride)
        self.input_size = (temporal_size, spatial_size, spatial_size)
        self.patch_dims = tuple(s // p for s, p in zip(self.input_size, stride3))
        num_patches = math.prod(self.patch_dims)

        self.patch_embed = PatchEmbed(
            in_chans, embed_dim, patch_kernel, patch_stride, patch_padding, conv_2d=patch_2d
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if cls_embed else None
        self.pos_embed = self.pos_embed_spatial = self.pos_embed_temporal = None
        self.pos_embed_class = None
        if use_abs_pos and sep_pos_embed:
            t, h, w = self.patch_dims
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, h * w, embed_dim))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, t, embed_dim))
            if cls_embed:
                self.pos_embed_class = nn.Parameter(torch.zeros(1, 1, embed_dim))
        elif use_abs_pos:
            self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + int(cls_embed), embed_dim))
        self.pos_drop = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()

        settings = _block_settings(
            depth=depth,
            embed_dim=embed_dim,
            num_heads=num_heads,
            dim_mul=dim_mul,
            head_mul=head_mul,
            pool_q_stride=pool_q_stride,
            pool_kv_stride=pool_kv_stride,
            pool_kv_stride_adaptive=pool_kv_stride_adaptive,
            pool_kvq_kernel=pool_kvq_kernel,
            dim_mul_in_att=dim_mul_in_att,
        )
        # stochastic depth grows linearly with depth (PySlowFast's torch.linspace(0, rate, depth))
        drop_path_rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList()
        self.feature_info: list[dict[str, Any]] = []
        grid = list(self.patch_dims)
        for i, s in enumerate(settings):
            self.blocks.append(
                MultiScaleBlock(
                    s.dim,
                    s.dim_out,
                    s.num_heads,
                    input_size=tuple(grid),
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop_path=drop_path_rates[i],
                    norm_layer=norm_layer,
                    kernel_q=s.kernel_q,
                    kernel_kv=s.kernel_kv,
                    stride_q=s.stride_q,
                    stride_kv=s.stride_kv,
                    mode=mode,
                    has_cls=cls_embed,
                    rel_pos_spatial=rel_pos_spatial,
                    rel_pos_temporal=rel_pos_temporal,
                    rel_pos_zero_init=rel_pos_zero_init,
                    residual_pooling=residual_pooling,
                    dim_mul_in_att=dim_mul_in_att,
                    attn_layer=attn_layer,
                    attn_norm_layer=attn_norm_layer,
                )
            )
            if s.stride_q:
                grid = [g // st for g, st in zip(grid, s.stride_q)]
            last_of_stage = i == depth - 1 or math.prod(settings[i + 1].stride_q or (1,)) > 1
            if last_of_stage:
                self.feature_info.append(
                    {"module": f"blocks.{i}", "num_chs": s.dim_out, "grid": tuple(grid)}
                )
        self.num_features = settings[-1].dim_out
        self.norm = norm_layer(self.num_features)
        self.head = TransformerHead(self.num_features, num_classes, head_dropout)
        self._init_weights()

    # PySlowFast initialisation (``MViT._init_weights``, applied to every module, the pooling
    # convs included): trunc-normal(0.02) weights; its Linear and LayerNorm biases start at
    # 0.02, not 0.
    def _init_weights(self) -> None:
        for p in (
            self.pos_embed,
            self.pos_embed_spatial,
            self.pos_embed_temporal,
            self.pos_embed_class,
            self.cls_token,
        ):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)
        trunc_normal_init_(self, std=0.02, bias=0.02)

    def no_weight_decay(self) -> set[str]:
        """Names of the position embeddings, rel-pos tables and cls token (no weight decay)."""
        keys = ("pos_embed", "rel_pos_h", "rel_pos_w", "rel_pos_t", "cls_token")
        return {n for n, _ in self.named_parameters() if any(k in n for k in keys)}

    def _abs_pos_embed(self) -> torch.Tensor | None:
        if self.pos_embed is not None:
            return self.pos_embed
        if self.pos_embed_spatial is None or self.pos_embed_temporal is None:
            return None
        t, h, w = self.patch_dims
        pos = self.pos_embed_spatial.repeat(1, t, 1) + torch.repeat_interleave(
            self.pos_embed_temporal, h * w, dim=1
        )
        if self.pos_embed_class is not None:
            pos = torch.cat((self.pos_embed_class, pos), dim=1)
        return pos

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.patch_2d and x.ndim == 5 and x.shape[2] == 1:
            x = x[:, :, 0]
        want = 4 if self.patch_2d else 5
        size = tuple(x.shape[2:])
        expected = self.input_size[1:] if self.patch_2d else self.input_size
        if x.ndim != want or size != tuple(expected):
            layout = "(B, C, H, W)" if self.patch_2d else "(B, C, T, H, W)"
            raise ValueError(
                f"{type(self).__name__} was built for input {layout} with "
                f"{'x'.join(map(str, expected))}, got shape {tuple(x.shape)}; build it with "
                "temporal_size=/spatial_size= matching your clips"
            )
        return x

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        x, thw = self.patch_embed(self._check_input(x))
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        pos = self._abs_pos_embed()
        if pos is not None:
            x = x + pos
        return self.pos_drop(x), thw

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised tokens (B, [1 +] T'H'W', num_features) after the last block."""
        x, thw = self._embed(x)
        for blk in self.blocks:
            x, thw = blk(x, thw)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """cls token (or the token mean without one), then the classifier unless ``pre_logits``."""
        x = x[:, 0] if self.cls_token is not None else x.mean(1)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, *, norm: bool = False) -> list[torch.Tensor]:
        """The output of each stage (the blocks between two q-poolings), as (B, C, T, H, W).

        ``norm`` applies the final LayerNorm to the last stage's output, as timm does.
        """
        x, thw = self._embed(x)
        ends = {int(f["module"].split(".")[1]) for f in self.feature_info}
        out = []
        s = int(self.cls_token is not None)
        for i, blk in enumerate(self.blocks):
            x, thw = blk(x, thw)
            if i in ends:
                y = self.norm(x) if norm and i == len(self.blocks) - 1 else x
                y = y[:, s:]
                out.append(y.transpose(1, 2).reshape(y.shape[0], y.shape[2], *thw))
        return out


# -- official sizes --------------------------------------------------------------------------

# MViT-B (v1), Kinetics: PySlowFast configs/Kinetics/MVIT_B_16x4_CONV.yaml (paper Table 3).
_MVIT_B_VIDEO: dict[str, Any] = dict(
    embed_dim=96,
    num_heads=1,
    depth=16,
    patch_kernel=(3, 7, 7),
    patch_stride=(2, 4, 4),
    patch_padding=(1, 3, 3),
    sep_pos_embed=True,
    dim_mul=[[1, 2.0], [3, 2.0], [14, 2.0]],
    head_mul=[[1, 2.0], [3, 2.0], [14, 2.0]],
    pool_q_stride=[[1, 1, 2, 2], [3, 1, 2, 2], [14, 1, 2, 2]],
    pool_kv_stride_adaptive=(1, 8, 8),
    pool_kvq_kernel=(3, 3, 3),
    drop_path_rate=0.2,
    head_dropout=0.5,
    pool_norm_eps=1e-5,
)


def _stagewise(depths: Sequence[int]) -> tuple[list[list[float]], list[list[int]]]:
    """MViTv2 stage layout as PySlowFast lists: widths/heads double and q pools 2x at each stage
    start, and every block gets a q-pooling entry (kernel 3 even at stride 1)."""
    starts = [sum(depths[:i]) for i in range(1, len(depths))]
    mul = [[s, 2.0] for s in starts]
    q = [[i, 1, 2, 2] if i in starts else [i, 1, 1, 1] for i in range(sum(depths))]
    return mul, q


def _mvitv2_image(depths: Sequence[int], **kwargs: Any) -> dict[str, Any]:
    # facebookresearch/mvit (and PySlowFast configs/ImageNet/MVITv2_*.yaml): no cls token, no
    # absolute position, 2D patch embed, kv stride 4 adaptive, kernel 3, channel expansion in
    # the attention, mean pooling before the head.
    mul, q = _stagewise(depths)
    cfg = dict(
        spatial_size=224,
        temporal_size=1,
        num_classes=1000,
        embed_dim=96,
        num_heads=1,
        depth=sum(depths),
        patch_kernel=(7, 7),
        patch_stride=(4, 4),
        patch_padding=(3, 3),
        patch_2d=True,
        cls_embed=False,
        use_abs_pos=False,
        rel_pos_spatial=True,
        residual_pooling=True,
        dim_mul_in_att=True,
        dim_mul=mul,
        head_mul=mul,
        pool_q_stride=q,
        pool_kv_stride_adaptive=(1, 4, 4),
        pool_kvq_kernel=(1, 3, 3),
        drop_path_rate=0.1,
        head_dropout=0.0,
    )
    cfg.update(kwargs)
    return cfg


def _create(defaults: dict[str, Any], **overrides: Any) -> MViT:
    return MViT(**{**defaults, **overrides})


def mvit_base_16x4(**kwargs: Any) -> MViT:
    """MViT-B 16x4, Kinetics-400 (16 frames, stride 4, 224^2): 36.6 M params, 70.5 GFLOPs (MACs)."""
    return _create(
        dict(_MVIT_B_VIDEO, spatial_size=224, temporal_size=16, num_classes=400), **kwargs
    )


def mvit_base_32x3(**kwargs: Any) -> MViT:
    """MViT-B 32x3, Kinetics-400 (32 frames, stride 3): MViT-B with a longer time axis, 36.6 M
    params (paper Table 3; pytorchvideo ``mvit_base_32x3``)."""
    return _create(
        dict(
            _MVIT_B_VIDEO, spatial_size=224, temporal_size=32, num_classes=400, drop_path_rate=0.3
        ),
        **kwargs,
    )


def mvit_base_224(**kwargs: Any) -> MViT:
    """Image MViT-B-16, ImageNet-1K at 224^2 (paper Sec. 5; pytorchvideo ``mvit_base_16``):
    2D patch embedding, kv pooling kernel (1, 3, 3) and adaptive stride 4."""
    cfg = dict(
        _MVIT_B_VIDEO,
        spatial_size=224,
        temporal_size=1,
        num_classes=1000,
        patch_kernel=(7, 7),
        patch_stride=(4, 4),
        patch_padding=(3, 3),
        patch_2d=True,
        pool_kv_stride_adaptive=(1, 4, 4),
        pool_kvq_kernel=(1, 3, 3),
        drop_path_rate=0.1,
        head_dropout=0.0,
    )
    return _create(cfg, **kwargs)


def mvitv2_tiny(**kwargs: Any) -> MViT:
    """MViTv2-T, ImageNet-1K 224^2 (depths 1-2-5-2): as timm ``mvitv2_tiny``."""
    return _create(_mvitv2_image((1, 2, 5, 2)), **kwargs)


def mvitv2_small(**kwargs: Any) -> MViT:
    """MViTv2-S, ImageNet-1K 224^2 (depths 1-2-11-2): as timm ``mvitv2_small``."""
    return _create(_mvitv2_image((1, 2, 11, 2)), **kwargs)


def mvitv2_base(**kwargs: Any) -> MViT:
    """MViTv2-B, ImageNet-1K 224^2 (depths 2-3-16-3): as timm ``mvitv2_base``."""
    return _create(_mvitv2_image((2, 3, 16, 3), drop_path_rate=0.3), **kwargs)


def mvitv2_small_16x4(**kwargs: Any) -> MViT:
    """MViTv2-S 16x4, Kinetics-400 (PySlowFast configs/Kinetics/MVITv2_S_16x4.yaml; torchvision
    ``mvit_v2_s``): cls token, spatial + temporal relative positions, no absolute position."""
    mul, q = _stagewise((1, 2, 11, 2))
    cfg = dict(
        _MVIT_B_VIDEO,
        spatial_size=224,
        temporal_size=16,
        num_classes=400,
        use_abs_pos=False,
        rel_pos_spatial=True,
        rel_pos_temporal=True,
        residual_pooling=True,
        dim_mul_in_att=True,
        dim_mul=mul,
        head_mul=mul,
        pool_q_stride=q,
        pool_norm_eps=1e-6,
    )
    return _create(cfg, **kwargs)


# -- CPU-sized models for the tiny recipe (not from the paper) -------------------------------

# 8 frames of 32x32: the MViT-B conv patch embedding gives a 4x8x8 grid. The MViT pools q (1, 2, 2)
# and doubles width and heads at blocks 1 and 3 (32 -> 64 -> 128 channels, 256 -> 64 -> 16
# tokens), k/v adaptively from (1, 4, 4), as MViT-B does at 224^2 with 16 frames.
_TINY_VIDEO: dict[str, Any] = dict(
    spatial_size=32,
    temporal_size=8,
    num_classes=40,
    depth=6,
    patch_kernel=(3, 7, 7),
    patch_stride=(2, 4, 4),
    patch_padding=(1, 3, 3),
    drop_path_rate=0.1,
    head_dropout=0.0,
)


def mvit_tiny_video(**kwargs: Any) -> MViT:
    """A 6-block MViT for 8x32x32 clips (tiny recipe): widths 32-64-128, 34 MMACs per clip."""
    cfg = dict(
        _TINY_VIDEO,
        embed_dim=32,
        num_heads=1,
        dim_mul=[[1, 2.0], [3, 2.0]],
        head_mul=[[1, 2.0], [3, 2.0]],
        pool_q_stride=[[1, 1, 2, 2], [3, 1, 2, 2]],
        pool_kv_stride_adaptive=(1, 4, 4),
        pool_kvq_kernel=(3, 3, 3),
    )
    return _create(cfg, **kwargs)


def vit_tiny_video(**kwargs: Any) -> MViT:
    """The single-scale baseline of the tiny recipe, at the MViT's compute: a ViT (an MViT
    without pooling, as pytorchvideo notes) of the same 6 blocks on 2x8x8 space-time patches
    (4x4x4 = 64 tokens at 8x32x32, ViT-B/16's patching scaled to 32 px), one width, 76 (2
    heads), chosen so that its MACs, 33.7 M per clip, match the MViT's 33.6 M (0.47 M params)."""
    cfg = dict(
        _TINY_VIDEO,
        embed_dim=76,
        num_heads=2,
        patch_kernel=(3, 8, 8),
        patch_stride=(2, 8, 8),
        patch_padding=(1, 0, 0),
    )
    return _create(cfg, **kwargs)
