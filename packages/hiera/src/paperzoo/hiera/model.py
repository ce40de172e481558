"""Hiera: A Hierarchical Vision Transformer without the Bells-and-Whistles.

Chaitanya Ryali, Yuan-Ting Hu, Daniel Bolya, Chen Wei, Haoqi Fan, Po-Yao Huang, Vaibhav
Aggarwal, Arkabandhu Chowdhury, Omid Poursaeed, Judy Hoffman, Jitendra Malik, Yanghao Li,
Christoph Feichtenhofer. ICML 2023. arXiv:2306.00989.

Follows the official code, github.com/facebookresearch/hiera (``hiera/hiera.py``,
``hiera/hiera_utils.py``; pip ``hiera-transformer``), and timm's port
(``timm/models/hiera.py``) for the ``forward_features`` / ``forward_head`` /
``forward_intermediates`` split. State-dict keys are the official ones, so an official
``model_state`` loads as is (see :mod:`paperzoo.hiera.convert`).

The idea, in the order of the paper:

1. A strided conv embeds patches (4x4 on images, 2x4x4 on video) and adds an absolute
   position embedding (separate space and time embeddings on video).
2. *Unroll* reorders the tokens once, so that each later 2x2 max-pool is a max over the
   leading axis of ``(B, 4, N/4, C)`` and each *mask unit* (an 8x8 patch window at stage 1)
   is contiguous. Hiera never reorders tokens again; *reroll* undoes the order only when
   spatial feature maps are asked for (``forward_intermediates``).
3. Blocks are plain ViT blocks whose attention is *mask-unit attention* (local, within each
   mask unit) in the first two stages and global attention after; the first block of stages
   2..4 max-pools the queries (and the residual, after a linear expansion): "q-pooling".
4. MAE masking drops whole mask units, so a masked image is just a shorter sequence (see
   :mod:`paperzoo.hiera.method`).

Attention itself is ``paperzoo.kernels.MaskUnitAttention``, which dispatches to the shared
attention backends; this file holds everything around it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import nn

from paperzoo.kernels import MaskUnitAttention
from paperzoo.kernels.layers import trunc_normal_init_

__all__ = [
    "Hiera",
    "HieraBlock",
    "HieraHead",
    "PatchEmbed",
    "Reroll",
    "Unroll",
    "hiera_base_16x224",
    "hiera_base_224",
    "hiera_base_plus_16x224",
    "hiera_base_plus_224",
    "hiera_huge_16x224",
    "hiera_huge_224",
    "hiera_large_16x224",
    "hiera_large_224",
    "hiera_small_224",
    "hiera_tiny_224",
    "hiera_toy_8x64",
    "model_configs",
]


# -- token order: unroll / reroll -----------------------------------------------------------


def _digit_layout(
    size: Sequence[int], schedule: Sequence[Sequence[int]]
) -> tuple[list[int], list[int]]:
    """How an unrolled token axis maps onto the spatial axes.

    Each spatial axis ``d`` of length ``size[d]`` is viewed as mixed-radix digits
    ``(g_d, s_{k,d}, ..., s_{1,d})`` (most significant first), where ``s_{i,d}`` is the
    ``i``-th stride of ``schedule``. Unrolling moves the stride digits in front, finest first:
    ``(s_{1,*}, s_{2,*}, ..., s_{k,*}, g_*)``. Returns the view shape of the spatial axes and
    the permutation (over those view axes) that produces the unrolled order.
    """
    dims, k = len(size), len(schedule)
    shape: list[int] = []
    for d in range(dims):
        coarse = size[d] // math.prod(s[d] for s in schedule)
        shape += [coarse] + [schedule[i][d] for i in reversed(range(k))]
    base = [d * (k + 1) for d in range(dims)]
    perm = [base[d] + (k - i) for i in range(k) for d in range(dims)] + base
    return shape, perm


class Unroll(nn.Module):
    """Reorder flattened patch tokens so that pooling and mask units are contiguous.

    For an image with stride schedule ``[(2, 2)] * 3``, token ``(y, x)`` moves so that the
    first 2x2 pool is ``x.view(B, 4, N // 4, C).amax(1)``, the next one the same on the
    result, and so on; after all three, what remains is in plain raster order. The official
    code applies one permute per stride; a single permute over the mixed-radix view gives the
    same order with one copy.
    """

    def __init__(
        self,
        input_size: Sequence[int],
        patch_stride: Sequence[int],
        unroll_schedule: Sequence[Sequence[int]],
    ) -> None:
        super().__init__()
        self.size = [i // s for i, s in zip(input_size, patch_stride)]
        self.schedule = [tuple(s) for s in unroll_schedule]
        self._shape, perm = _digit_layout(self.size, self.schedule)
        self._perm = [0] + [p + 1 for p in perm] + [len(perm) + 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) tokens in raster order -> (B, N, C) in unrolled order."""
        B, N, C = x.shape
        return x.view(B, *self._shape, C).permute(self._perm).reshape(B, N, C)


class Reroll(nn.Module):
    """Undo :class:`Unroll` for the output of a given block, to get spatial feature maps.

    The blocks of stage ``s`` still carry the strides that later q-pools have not consumed;
    rerolling puts those digits back. Without a mask the result is (B, *spatial, C); with a
    mask (MAE), only the kept mask units exist, so it is (B, #kept units, *unit shape, C).
    """

    def __init__(
        self,
        input_size: Sequence[int],
        patch_stride: Sequence[int],
        unroll_schedule: Sequence[Sequence[int]],
        stage_ends: Sequence[int],
        q_pool: int,
    ) -> None:
        super().__init__()
        size = [i // s for i, s in zip(input_size, patch_stride)]
        schedule = [tuple(s) for s in unroll_schedule]
        # (remaining schedule, current size) per block; pooling at a stage end consumes one stride.
        self.schedule: dict[int, tuple[list[tuple[int, ...]], list[int]]] = {}
        for i in range(stage_ends[-1] + 1):
            self.schedule[i] = (schedule, size)
            if i in stage_ends[:q_pool]:
                if schedule:
                    size = [n // s for n, s in zip(size, schedule[0])]
                schedule = schedule[1:]

    def forward(
        self, x: torch.Tensor, block_idx: int, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, N, C) unrolled tokens of block ``block_idx`` -> spatial (see class docstring)."""
        schedule, size = self.schedule[block_idx]
        B, _, C = x.shape
        dims, k = len(size), len(schedule)
        if mask is None:
            shape, perm = _digit_layout(size, schedule)
            unrolled = [shape[p] for p in perm]
            inverse = [perm.index(j) for j in range(len(perm))]
            x = x.view(B, *unrolled, C).permute([0, *(i + 1 for i in inverse), len(perm) + 1])
            return x.reshape(B, *size, C)
        # Kept units only: token axis is (s_1.., ..., s_k.., units); a unit's own axis d is the
        # digits (s_{k,d}, ..., s_{1,d}), most significant first.
        digits = [s[d] for s in schedule for d in range(dims)]
        x = x.view(B, *digits, -1, C)
        unit_axes = [1 + i * dims + d for d in range(dims) for i in reversed(range(k))]
        x = x.permute([0, 1 + k * dims, *unit_axes, 2 + k * dims])
        unit_shape = [math.prod(s[d] for s in schedule) for d in range(dims)]
        return x.reshape(B, -1, *unit_shape, C)


def undo_windowing(x: torch.Tensor, shape: Sequence[int], mu_shape: Sequence[int]) -> torch.Tensor:
    """(B, #units, *mu_shape, C), units in raster order -> (B, *shape, C) spatial map."""
    dims = len(shape)
    B, C = x.shape[0], x.shape[-1]
    num_units = [s // m for s, m in zip(shape, mu_shape)]
    x = x.view(B, *num_units, *mu_shape, C)
    perm = [0] + [a for d in range(dims) for a in (1 + d, 1 + dims + d)] + [1 + 2 * dims]
    return x.permute(perm).reshape(B, *shape, C)


def _pool_unrolled(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Max-pool by ``stride`` (flattened, e.g. 2x2 = 4) on unrolled (B, N, C) tokens."""
    return x.view(x.shape[0], stride, -1, x.shape[-1]).amax(dim=1)


# -- blocks ---------------------------------------------------------------------------------


class PatchEmbed(nn.Module):
    """Conv patch embedding for 2D (images) or 3D (video) inputs.

    With an MAE mask, masked regions of the input are zeroed before the conv, so the
    overlapping 7x7 kernels cannot see pixels of dropped mask units (official ``do_masked_conv``).
    """

    def __init__(
        self,
        in_chans: int,
        embed_dim: int,
        kernel: Sequence[int],
        stride: Sequence[int],
        padding: Sequence[int],
    ) -> None:
        super().__init__()
        conv = {2: nn.Conv2d, 3: nn.Conv3d}.get(len(kernel))
        if conv is None:
            raise ValueError(f"patch_kernel must have 2 (image) or 3 (video) dims, got {kernel}")
        self.proj = conv(in_chans, embed_dim, kernel_size=kernel, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, [T,] H, W) -> (B, N, D) tokens in raster order; ``mask`` is
        (B, 1, *mask-unit grid) bool, True = keep."""
        if mask is not None:
            mask = F.interpolate(mask.float(), size=x.shape[2:])  # nearest: one value per unit
            x = x * mask.bool()
        return self.proj(x).flatten(2).transpose(1, 2)


class HieraBlock(nn.Module):
    """Pre-norm transformer block with mask-unit (or global) attention and q-pooling.

    When the width changes (first block of a stage), the residual is the normalized input
    projected to ``dim_out`` and max-pooled like the queries, as in the official code.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
        q_stride: int = 1,
        window_size: int = 0,
        use_mask_unit_attn: bool = False,
    ) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.norm1 = norm_layer(dim)
        self.attn = MaskUnitAttention(
            dim,
            dim_out,
            heads,
            q_stride=q_stride,
            window_size=window_size,
            use_mask_unit_attn=use_mask_unit_attn,
        )
        self.norm2 = norm_layer(dim_out)
        self.mlp = Mlp(dim_out, int(dim_out * mlp_ratio), act_layer=act_layer)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.proj = nn.Linear(dim, dim_out) if dim != dim_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, dim) unrolled tokens -> (B, N / q_stride, dim_out)."""
        x_norm = self.norm1(x)
        if self.proj is not None:
            x = _pool_unrolled(self.proj(x_norm), self.attn.q_stride)
        x = x + self.drop_path(self.attn(x_norm))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class HieraHead(nn.Module):
    """Dropout + linear classifier on pooled, normalized features.

    Unlike the official ``Head``, this returns logits in eval mode too: the official head
    applies softmax when ``not self.training``. Take ``.softmax(-1)`` to compare with it.
    """

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.projection = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.dropout(x))


# -- model ----------------------------------------------------------------------------------


def _triple_or_pair(value: Sequence[int] | int, dims: int) -> tuple[int, ...]:
    return (value,) * dims if isinstance(value, int) else tuple(value)


class Hiera(nn.Module):
    """Hiera image (2D input) or video (3D input) model.

    Args (as in the official ``Hiera``):
        input_size: (H, W) or (T, H, W) in pixels / frames.
        embed_dim, num_heads: width and heads of stage 1; each stage multiplies them by
            ``dim_mul`` / ``head_mul``.
        stages: blocks per stage.
        q_pool: how many stage transitions max-pool (3 for classification, 2 in MAE).
        q_stride: pooling stride per spatial dim, e.g. (2, 2) or (1, 2, 2) on video.
        mask_unit_size: mask-unit size in tokens at stage 1, e.g. (8, 8) or (1, 8, 8).
        mask_unit_attn: per stage, local mask-unit attention (True) or global attention.
        patch_kernel, patch_stride, patch_padding: the patch-embedding conv.
        sep_pos_embed: separate spatial and temporal position embeddings (video).
        num_classes: classifier width; 0 gives no classifier (``forward`` returns pooled,
            normalized features).
        head_init_scale: the classifier's initial weights are scaled by this.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (224, 224),
        in_chans: int = 3,
        embed_dim: int = 96,
        num_heads: int = 1,
        num_classes: int = 1000,
        stages: Sequence[int] = (2, 3, 16, 3),
        q_pool: int = 3,
        q_stride: Sequence[int] = (2, 2),
        mask_unit_size: Sequence[int] = (8, 8),
        mask_unit_attn: Sequence[bool] = (True, True, False, False),
        dim_mul: float = 2.0,
        head_mul: float = 2.0,
        patch_kernel: Sequence[int] = (7, 7),
        patch_stride: Sequence[int] = (4, 4),
        patch_padding: Sequence[int] = (3, 3),
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        norm_layer: Callable[[int], nn.Module] | None = None,
        head_dropout: float = 0.0,
        head_init_scale: float = 0.001,
        sep_pos_embed: bool = False,
    ) -> None:
        super().__init__()
        dims = len(input_size)
        for name, value in (
            ("q_stride", q_stride),
            ("mask_unit_size", mask_unit_size),
            ("patch_kernel", patch_kernel),
            ("patch_stride", patch_stride),
            ("patch_padding", patch_padding),
        ):
            if len(value) != dims:
                raise ValueError(
                    f"{name}={tuple(value)} has {len(value)} dims but input_size="
                    f"{tuple(input_size)} has {dims}; give one value per input dim"
                )
        if not 0 <= q_pool < len(stages):
            raise ValueError(f"q_pool must be in [0, {len(stages) - 1}], got {q_pool}")
        if len(mask_unit_attn) != len(stages):
            raise ValueError("mask_unit_attn needs one flag per stage")
        if sep_pos_embed and dims != 3:
            raise ValueError("sep_pos_embed (separate space/time embeddings) needs a 3D input_size")
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)

        self.input_size = tuple(input_size)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.patch_stride = tuple(patch_stride)
        self.tokens_spatial_shape = [i // s for i, s in zip(input_size, patch_stride)]
        # The token grid must split into whole mask units, and the unroll strides must divide it.
        unroll_schedule = [tuple(q_stride)] * (len(stages) - 1)
        for d, n in enumerate(self.tokens_spatial_shape):
            pool = math.prod(s[d] for s in unroll_schedule)
            if n % mask_unit_size[d] or n % pool:
                raise ValueError(
                    f"input_size={tuple(input_size)} gives a token grid of "
                    f"{self.tokens_spatial_shape}; each dim must be divisible by the mask unit "
                    f"{tuple(mask_unit_size)} and by q_stride**{len(stages) - 1}={pool}"
                )
            if mask_unit_size[d] % q_stride[d] ** q_pool:
                raise ValueError(
                    f"mask_unit_size={tuple(mask_unit_size)} cannot be q-pooled {q_pool} times "
                    f"by q_stride={tuple(q_stride)}; lower q_pool or enlarge the mask unit"
                )
        self.q_pool, self.q_stride = q_pool, tuple(q_stride)
        self.mask_unit_size = tuple(mask_unit_size)
        self.mu_size = math.prod(mask_unit_size)
        self.mask_spatial_shape = [
            n // m for n, m in zip(self.tokens_spatial_shape, self.mask_unit_size)
        ]
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        self.sep_pos_embed = sep_pos_embed

        self.patch_embed = PatchEmbed(
            in_chans, embed_dim, patch_kernel, patch_stride, patch_padding
        )
        if sep_pos_embed:
            t, h, w = self.tokens_spatial_shape
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, h * w, embed_dim))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, t, embed_dim))
        else:
            num_tokens = math.prod(self.tokens_spatial_shape)
            self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, embed_dim))

        self.unroll = Unroll(input_size, patch_stride, unroll_schedule)
        self.reroll = Reroll(input_size, patch_stride, unroll_schedule, self.stage_ends, q_pool)

        q_pool_blocks = [end + 1 for end in self.stage_ends[:q_pool]]
        flat_q_stride = math.prod(q_stride)
        window = self.mu_size
        depth = sum(stages)
        # Stochastic depth rises linearly over the blocks (as torch.linspace, on any device).
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList()
        stage = 0
        dim = embed_dim
        for i in range(depth):
            dim_out = dim
            # The attention type lags one block: the first block of a new stage still uses the
            # previous stage's (mask-unit) attention, so global attention runs after pooling.
            use_mask_unit_attn = mask_unit_attn[stage]
            if i - 1 in self.stage_ends:
                dim_out = int(dim * dim_mul)
                num_heads = int(num_heads * head_mul)
                stage += 1
                if i in q_pool_blocks:
                    window //= flat_q_stride
            self.blocks.append(
                HieraBlock(
                    dim=dim,
                    dim_out=dim_out,
                    heads=num_heads,
                    mlp_ratio=mlp_ratio,
                    drop_path=dpr[i],
                    norm_layer=norm_layer,
                    q_stride=flat_q_stride if i in q_pool_blocks else 1,
                    window_size=window,
                    use_mask_unit_attn=use_mask_unit_attn,
                )
            )
            dim = dim_out
        self.num_features = dim
        self.feature_info = [
            {
                "num_chs": self.blocks[end].dim_out,
                "reduction": self.patch_stride[-1] * q_stride[-1] ** min(s, q_pool),
                "module": f"blocks.{end}",
            }
            for s, end in enumerate(self.stage_ends)
        ]
        self.norm = norm_layer(dim)
        self.head: nn.Module = (
            HieraHead(dim, num_classes, head_dropout) if num_classes > 0 else nn.Identity()
        )
        self._init_weights(head_init_scale)

    # Official init: trunc-normal(0.02) weights, biases 0.02 (LayerNorm too), small classifier.
    def _init_weights(self, head_init_scale: float) -> None:
        if self.sep_pos_embed:
            nn.init.trunc_normal_(self.pos_embed_spatial, std=0.02)
            nn.init.trunc_normal_(self.pos_embed_temporal, std=0.02)
        else:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_init_(self, std=0.02, bias=0.02)
        if isinstance(self.head, HieraHead):
            with torch.no_grad():
                self.head.projection.weight.mul_(head_init_scale)
                self.head.projection.bias.mul_(head_init_scale)

    def no_weight_decay(self) -> set[str]:
        """Parameter names the official recipes exclude from weight decay."""
        if self.sep_pos_embed:
            return {"pos_embed_spatial", "pos_embed_temporal"}
        return {"pos_embed"}

    @property
    def num_mask_units(self) -> int:
        return math.prod(self.mask_spatial_shape)

    def get_random_mask(
        self, x: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, #mask units) bool, True = keep; ``int(#units * (1 - mask_ratio))`` kept per sample."""
        B = x.shape[0]
        num_keep = int(self.num_mask_units * (1 - mask_ratio))
        noise = torch.rand(B, self.num_mask_units, device=x.device, generator=generator)
        keep = torch.argsort(noise, dim=1)[:, :num_keep]
        mask = torch.zeros(B, self.num_mask_units, dtype=torch.bool, device=x.device)
        return mask.scatter_(1, keep, True)

    def get_pos_embed(self) -> torch.Tensor:
        """(1, N, D) position embedding in raster order."""
        if self.sep_pos_embed:
            pos = self.pos_embed_temporal[:, :, None, :] + self.pos_embed_spatial[:, None, :, :]
            return pos.flatten(1, 2)
        return self.pos_embed

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (self.in_chans, *self.input_size)
        if tuple(x.shape[1:]) != expected:
            kind = "(B, C, T, H, W)" if len(self.input_size) == 3 else "(B, C, H, W)"
            raise ValueError(
                f"Hiera built for input {kind} = (B, {', '.join(map(str, expected))}) got "
                f"{tuple(x.shape)}; resize the input or build the model with input_size="
                f"{tuple(x.shape[2:])}"
            )

    def _embed(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Patch-embed, add positions, unroll, and drop masked units: (B, N_kept, D)."""
        self._check_input(x)
        B = x.shape[0]
        if mask is not None and mask.shape != (B, self.num_mask_units):
            raise ValueError(
                f"mask must be (B, #mask units) = ({B}, {self.num_mask_units}) bool with "
                f"True = keep, got {tuple(mask.shape)}"
            )
        unit_mask = mask.view(B, 1, *self.mask_spatial_shape) if mask is not None else None
        x = self.patch_embed(x, mask=unit_mask)
        x = self.unroll(x + self.get_pos_embed())
        if mask is not None:
            # Unrolled tokens are (offset within unit, unit); keep whole units.
            C = x.shape[-1]
            x = x.view(B, self.mu_size, -1, C)[mask[:, None, :].expand(-1, self.mu_size, -1)]
            x = x.view(B, -1, C)
        return x

    def forward_features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, [T,] H, W) -> final-stage tokens (B, N, D), not pooled or normalized.

        ``mask``: (B, #mask units) bool, True = keep (the same count per sample).
        """
        x = self._embed(x, mask)
        for blk in self.blocks:
            x = blk(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, N, D) tokens -> mean-pooled, normalized (B, D), then logits (B, num_classes)."""
        x = self.norm(x.mean(dim=1))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, num_classes); with a ``mask``, the kept tokens (B, N_kept, D) instead
        (as the official model does, for MAE-style use)."""
        x = self.forward_features(x, mask)
        return self.forward_head(x) if mask is None else x

    def forward_intermediates(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = True,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs as spatial feature maps (timm's API, stage-level taps).

        Args:
            indices: stages to return: the last ``n`` if an int, all if None, or a list of
                stage indices (negative counts from the end).
            norm: unsupported (Hiera has no per-stage norms); must be False.
            stop_early: skip the blocks after the last requested stage.
            output_fmt: "NCHW" (channels first: (B, C, H, W) or (B, C, T, H, W) on video) or
                "NHWC" (channels last). With a ``mask``, maps are (B, #kept units, *unit, C).
        Returns:
            the intermediates, or ``(final tokens, intermediates)`` unless ``intermediates_only``.
        """
        if norm:
            raise ValueError("Hiera has no per-stage norm; call with norm=False")
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        take = _take_indices(len(self.stage_ends), indices)
        take_blocks = {self.stage_ends[i] for i in take}
        last = max(take_blocks)
        x = self._embed(x, mask)
        intermediates = []
        blocks = self.blocks[: last + 1] if stop_early else self.blocks
        for i, blk in enumerate(blocks):
            x = blk(x)
            if i in take_blocks:
                feat = self.reroll(x, i, mask=mask)
                if output_fmt == "NCHW" and mask is None:
                    feat = feat.movedim(-1, 1)
                intermediates.append(feat)
        if intermediates_only:
            return intermediates
        return x, intermediates


def _take_indices(num_stages: int, indices: int | Sequence[int] | None) -> list[int]:
    if indices is None:
        return list(range(num_stages))
    if isinstance(indices, int):
        if not 0 < indices <= num_stages:
            raise ValueError(f"indices={indices}: ask for 1..{num_stages} last stages")
        return list(range(num_stages - indices, num_stages))
    out = []
    for i in indices:
        j = i + num_stages if i < 0 else i
        if not 0 <= j < num_stages:
            raise ValueError(f"stage index {i} out of range for {num_stages} stages")
        out.append(j)
    return sorted(out)


# -- sizes ----------------------------------------------------------------------------------

_VIDEO = dict(
    input_size=(16, 224, 224),
    q_stride=(1, 2, 2),
    mask_unit_size=(1, 8, 8),
    patch_kernel=(3, 7, 7),
    patch_stride=(2, 4, 4),
    patch_padding=(1, 3, 3),
    sep_pos_embed=True,
    num_classes=400,
)

_CONFIGS: dict[str, dict[str, Any]] = {
    "hiera_tiny_224": dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2)),
    "hiera_small_224": dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2)),
    "hiera_base_224": dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)),
    "hiera_base_plus_224": dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3)),
    "hiera_large_224": dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4)),
    "hiera_huge_224": dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4)),
    "hiera_base_16x224": dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3), **_VIDEO),
    "hiera_base_plus_16x224": dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3), **_VIDEO),
    "hiera_large_16x224": dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4), **_VIDEO),
    "hiera_huge_16x224": dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4), **_VIDEO),
    # Not in the paper: a CPU-sized video Hiera for the tiny recipe (8 frames of 64x64, the
    # moving-digits videos). The official video patch embedding (3x7x7 conv, stride 2x4x4),
    # so a 4x16x16 token grid; three stages instead of four (16 -> 32 -> 64 wide, 1-2-1
    # blocks), hence mask units of 1x4x4 tokens (= q_stride ** 2): 64 units per clip.
    "hiera_toy_8x64": dict(
        embed_dim=16,
        num_heads=1,
        stages=(1, 2, 1),
        q_pool=2,
        mask_unit_attn=(True, True, False),
        **{**_VIDEO, "input_size": (8, 64, 64), "mask_unit_size": (1, 4, 4), "num_classes": 40},
    ),
}


def model_configs() -> dict[str, dict[str, Any]]:
    """Name -> constructor arguments of every registered size (a copy)."""
    return {name: dict(cfg) for name, cfg in _CONFIGS.items()}


def _create_hiera(variant: str, **kwargs: Any) -> Hiera:
    return Hiera(**{**_CONFIGS[variant], **kwargs})


def hiera_tiny_224(**kwargs: Any) -> Hiera:
    """Hiera-T, 224x224 images (27.9 M params)."""
    return _create_hiera("hiera_tiny_224", **kwargs)


def hiera_small_224(**kwargs: Any) -> Hiera:
    """Hiera-S, 224x224 images (35.0 M params)."""
    return _create_hiera("hiera_small_224", **kwargs)


def hiera_base_224(**kwargs: Any) -> Hiera:
    """Hiera-B, 224x224 images (51.5 M params, 9.4 GMACs)."""
    return _create_hiera("hiera_base_224", **kwargs)


def hiera_base_plus_224(**kwargs: Any) -> Hiera:
    """Hiera-B+, 224x224 images (69.9 M params)."""
    return _create_hiera("hiera_base_plus_224", **kwargs)


def hiera_large_224(**kwargs: Any) -> Hiera:
    """Hiera-L, 224x224 images (213.7 M params)."""
    return _create_hiera("hiera_large_224", **kwargs)


def hiera_huge_224(**kwargs: Any) -> Hiera:
    """Hiera-H, 224x224 images (672.8 M params)."""
    return _create_hiera("hiera_huge_224", **kwargs)


def hiera_base_16x224(**kwargs: Any) -> Hiera:
    """Hiera-B, 16 frames of 224x224, Kinetics-400 head."""
    return _create_hiera("hiera_base_16x224", **kwargs)


def hiera_base_plus_16x224(**kwargs: Any) -> Hiera:
    """Hiera-B+, 16 frames of 224x224, Kinetics-400 head."""
    return _create_hiera("hiera_base_plus_16x224", **kwargs)


def hiera_large_16x224(**kwargs: Any) -> Hiera:
    """Hiera-L, 16 frames of 224x224, Kinetics-400 head."""
    return _create_hiera("hiera_large_16x224", **kwargs)


def hiera_huge_16x224(**kwargs: Any) -> Hiera:
    """Hiera-H, 16 frames of 224x224, Kinetics-400 head."""
    return _create_hiera("hiera_huge_16x224", **kwargs)


def hiera_toy_8x64(**kwargs: Any) -> Hiera:
    """A CPU-sized 3-stage video Hiera (not from the paper) for the tiny recipe: 8x64x64."""
    return _create_hiera("hiera_toy_8x64", **kwargs)
