"""DiffMAE: Diffusion Models as Masked Autoencoders.

Chen Wei, Karttikeya Mangalam, Po-Yao Huang, Yanghao Li, Haoqi Fan, Hu Xu, Huiyu Wang,
Cihang Xie, Alan Yuille, Christoph Feichtenhofer. ICCV 2023, arXiv:2304.03283. No official code
was released; the encoder follows MAE's ``models_mae.py`` (github.com/facebookresearch/mae, its
state-dict keys included) on timm's ViT blocks, the video tubelets MAE-ST's ``video_vit.py``
(github.com/facebookresearch/mae_st), and the fine-tuned classifier is timm's
``VisionTransformer(global_pool="avg")`` as in MAE's ``models_vit.py``.

- Encoder: a ViT on the *visible* patches only (MAE), fixed 2D (or 3D) sin-cos position
  embeddings, a class token.
- Decoder (paper, Fig. 3): its inputs are the *masked* patches noised to a random diffusion step
  ``t``, its outputs the predicted clean pixels. Its blocks are top-down connected to the encoder
  blocks: decoder block ``j`` cross-attends to the output of encoder block
  :func:`top_down_sources` ``[j]`` (the first decoder block to the last encoder block). The
  *cross-self* decoder has self-attention among the noisy tokens in each block, the *cross*
  decoder does not (Fig. 3). The timestep enters through diffusers' sinusoidal ``Timesteps``
  and ``TimestepEmbedding`` MLP, added to every noisy token.
- :class:`MAE`: the same encoder with MAE's pixel-regression decoder (mask tokens + visible
  tokens, self-attention), the paper's main baseline.
- :class:`ViTClassifier`: the encoder for fine-tuning (average-pooled tokens, ``fc_norm``,
  ``head``), key-compatible with timm's ViT and MAE's fine-tuning model.

Shapes: images (B, C, H, W), videos (B, C, T, H, W); patches (B, L, pt * p * p * C) in MAE's
``patchify`` order (time, row, column, channel).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import (
    TimestepEmbedding,
    Timesteps,
    get_2d_sincos_pos_embed_from_grid,
    get_3d_sincos_pos_embed,
)
from timm.layers import Mlp, PatchEmbed
from timm.models.vision_transformer import Attention, Block
from torch import nn

_LayerNorm = partial(nn.LayerNorm, eps=1e-6)

__all__ = [
    "MAE",
    "SIZES",
    "CrossAttention",
    "DecoderBlock",
    "DiffMAE",
    "MaskedViTEncoder",
    "TubeletEmbed",
    "ViTClassifier",
    "build_classifier",
    "build_pretraining_model",
    "gather_tokens",
    "init_linear_and_norm",
    "init_mae_weights",
    "patchify",
    "random_masking",
    "sincos_pos_embed",
    "top_down_sources",
    "unpatchify",
]

# -- patches and masks ------------------------------------------------------------------------


def patchify(x: torch.Tensor, patch: Sequence[int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, h*w, p*p*C), or (B, C, T, H, W) -> (B, t*h*w, pt*p*p*C).

    ``patch`` is (p, p) or (pt, p, p); pixel order within a patch is (time, row, column,
    channel), MAE's ``nchpwq -> nhwpqc``.
    """
    if x.ndim == 4:
        x = x.unsqueeze(2)
        patch = (1, *patch)
    B, C, T, H, W = x.shape
    pt, ph, pw = patch
    x = x.reshape(B, C, T // pt, pt, H // ph, ph, W // pw, pw)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # B, t, h, w, pt, ph, pw, C
    return x.reshape(B, (T // pt) * (H // ph) * (W // pw), pt * ph * pw * C)


def unpatchify(
    patches: torch.Tensor, patch: Sequence[int], grid: Sequence[int], channels: int
) -> torch.Tensor:
    """The inverse of :func:`patchify`: ``grid`` is (h, w) or (t, h, w) patches."""
    video = len(grid) == 3
    pt, ph, pw = patch if video else (1, *patch)
    gt, gh, gw = grid if video else (1, *grid)
    B = patches.shape[0]
    x = patches.reshape(B, gt, gh, gw, pt, ph, pw, channels)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(B, channels, gt * pt, gh * ph, gw * pw)
    return x if video else x.squeeze(2)


def random_masking(
    batch: int,
    num_patches: int,
    mask_ratio: float,
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking: (ids_keep (B, Lk), ids_mask (B, L - Lk)) int64.

    ``Lk = int(L * (1 - mask_ratio))`` patches are kept, chosen by sorting uniform noise;
    each index set is sorted, so a patch's order follows the image.
    """
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")
    keep = int(num_patches * (1 - mask_ratio))
    noise = torch.rand(batch, num_patches, generator=generator, device=device)
    order = torch.argsort(noise, dim=1)
    return order[:, :keep].sort(dim=1).values, order[:, keep:].sort(dim=1).values


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Tokens ``ids`` (B, N) of ``x`` (B, L, D) -> (B, N, D)."""
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def sincos_pos_embed(dim: int, grid: Sequence[int], cls_token: bool) -> torch.Tensor:
    """Fixed sin-cos position embeddings (1, [1 +] L, dim) from diffusers.

    2D (h, w), square or rectangular (AudioMAE's time x frequency grid): MAE's
    ``get_2d_sincos_pos_embed`` (positions 0..h-1 and 0..w-1, the first half of the channels
    for the column, the second for the row), through diffusers' ``..._from_grid`` on MAE's
    ``meshgrid(w, h)`` (diffusers' ``get_2d_sincos_pos_embed`` rescales each axis by
    ``base_size``, which keeps 0..g-1 only on square grids);
    3D (t, h, w): diffusers' ``get_3d_sincos_pos_embed`` (3/4 of the channels spatial, 1/4
    temporal), flattened in (t, h, w) order. A class token gets a zero row, as in MAE.
    """
    if len(grid) == 2:
        h, w = grid
        rows, cols = torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64)
        mesh = torch.stack(torch.meshgrid(cols, rows, indexing="xy"))  # (2, h, w): column, row
        emb = get_2d_sincos_pos_embed_from_grid(dim, mesh, output_type="pt")
    else:
        t, h, w = grid
        if h != w:
            raise ValueError(f"square patch grids only, got {tuple(grid)}")
        emb = get_3d_sincos_pos_embed(dim, h, t, output_type="pt").reshape(t * h * w, dim)
    emb = emb.float()
    if cls_token:
        emb = torch.cat([emb.new_zeros(1, dim), emb])
    return emb.unsqueeze(0)


def top_down_sources(encoder_depth: int, decoder_depth: int) -> tuple[int, ...]:
    """Which encoder block feeds each decoder block: the top-down connection of Fig. 3.

    Decoder block 0 reads the last encoder block, the last decoder block the first one, and
    the blocks between are spread evenly (``round``). With equal depths this is block ``j`` <-
    block ``depth - 1 - j``. (The spreading for a shallower decoder is our choice: the paper's
    text on it could not be read here.)
    """
    if not 1 <= decoder_depth <= encoder_depth:
        raise ValueError(
            f"the decoder needs 1..{encoder_depth} blocks (one encoder block each), got "
            f"{decoder_depth}"
        )
    if decoder_depth == 1:
        return (encoder_depth - 1,)
    span = encoder_depth - 1
    return tuple(round(span * (1 - j / (decoder_depth - 1))) for j in range(decoder_depth))


# -- blocks -----------------------------------------------------------------------------------


class TubeletEmbed(nn.Module):
    """Space-time patches (MAE-ST ``PatchEmbed``): Conv3d, kernel = stride = (pt, p, p).

    (B, C, T, H, W) -> (B, t*h*w, D). Same attribute names as timm's ``PatchEmbed``.
    """

    def __init__(
        self, img_size: int, patch_size: int, num_frames: int, tubelet_size: int, in_chans: int,
        embed_dim: int,
    ) -> None:  # fmt: skip
        super().__init__()
        if num_frames % tubelet_size or img_size % patch_size:
            raise ValueError(
                f"{num_frames} frames x {img_size} px do not split into {tubelet_size} x "
                f"{patch_size} px tubelets"
            )
        self.patch_size = (tubelet_size, patch_size, patch_size)
        self.grid_size = (
            num_frames // tubelet_size,
            img_size // patch_size,
            img_size // patch_size,
        )
        self.num_patches = math.prod(self.grid_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, self.patch_size, stride=self.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class CrossAttention(nn.Module):
    """Multi-head attention of ``x`` (B, N, dim) to ``context`` (B, M, context_dim).

    Queries from ``x``, keys and values from the context (projected to ``dim``), torch SDPA.
    timm has no cross-attention block for two widths; this is its ``Attention`` with the
    keys and values taken from elsewhere.
    """

    def __init__(self, dim: int, context_dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(context_dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        h = self.num_heads
        q = self.q(x).reshape(B, N, h, D // h).transpose(1, 2)
        k, v = self.kv(context).reshape(B, -1, 2, h, D // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class DecoderBlock(nn.Module):
    """One DiffMAE decoder block (pre-norm): [self-attention], cross-attention to one encoder
    block's output, MLP, each residual.

    ``self_attention=True`` is the *cross-self* block, ``False`` the *cross* block; they differ
    by exactly ``norm1`` + ``attn``.
    """

    def __init__(
        self,
        dim: int,
        context_dim: int,
        num_heads: int,
        *,
        mlp_ratio: float = 4.0,
        self_attention: bool = True,
        norm_layer: Any = _LayerNorm,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim) if self_attention else None
        self.attn = Attention(dim, num_heads, qkv_bias=True) if self_attention else None
        self.norm2 = norm_layer(dim)
        self.norm_context = norm_layer(context_dim)
        self.cross_attn = CrossAttention(dim, context_dim, num_heads)
        self.norm3 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if self.attn is not None:
            x = x + self.attn(self.norm1(x))
        x = x + self.cross_attn(self.norm2(x), self.norm_context(context))
        return x + self.mlp(self.norm3(x))


# -- initialisation ---------------------------------------------------------------------------


def init_linear_and_norm(module: nn.Module) -> None:
    """MAE's ``_init_weights`` over every submodule: xavier-uniform Linear weights, zero
    biases, LayerNorm weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_mae_weights(encoder: MaskedViTEncoder) -> None:
    """MAE's ``initialize_weights`` on a :class:`MaskedViTEncoder` (or a model built on one):
    sin-cos ``pos_embed`` over its patch grid (rectangular too), the patch projection xavier
    as a Linear, N(0, 0.02) ``cls_token``, then :func:`init_linear_and_norm` on every module."""
    with torch.no_grad():
        encoder.pos_embed.copy_(sincos_pos_embed(encoder.embed_dim, encoder.grid, cls_token=True))
    w = encoder.patch_embed.proj.weight.data
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    nn.init.normal_(encoder.cls_token, std=0.02)
    init_linear_and_norm(encoder)


# -- the encoder ------------------------------------------------------------------------------


class MaskedViTEncoder(nn.Module):
    """A ViT that runs on a subset of its patches (MAE's encoder), images or videos.

    Keys as MAE's ``MaskedAutoencoderViT``: ``patch_embed.proj``, ``cls_token``, ``pos_embed``
    (fixed sin-cos, not trained unless ``learnable_pos_embed``), ``blocks.i`` (timm ``Block``),
    ``norm``. ``num_frames > 1`` uses :class:`TubeletEmbed` (``tubelet_size`` frames each).
    """

    def __init__(
        self,
        *,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_frames: int = 1,
        tubelet_size: int = 1,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        learnable_pos_embed: bool = False,
        norm_layer: Any = _LayerNorm,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        if num_frames > 1:
            self.patch_embed: nn.Module = TubeletEmbed(
                img_size, patch_size, num_frames, tubelet_size, in_chans, embed_dim
            )
            self.patch = self.patch_embed.patch_size
            self.grid = self.patch_embed.grid_size
        else:
            self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
            self.patch = (patch_size, patch_size)
            self.grid = tuple(self.patch_embed.grid_size)
        self.num_patches = math.prod(self.grid)
        self.patch_dim = math.prod(self.patch) * in_chans
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_patches + 1, embed_dim), requires_grad=learnable_pos_embed
        )
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # timm's linspace
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, drop_path=dpr[i],
                  norm_layer=norm_layer)
            for i in range(depth)
        )  # fmt: skip
        self.norm = norm_layer(embed_dim)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        return patchify(x, self.patch)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        return unpatchify(patches, self.patch, self.grid, self.in_chans)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def forward_encoder(
        self, x: torch.Tensor, ids_keep: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Every block's output (B, 1 + Lk, D) on the kept patches (all when ``ids_keep`` is
        None), class token first; the last one after the final ``norm``."""
        tokens = self.patch_embed(x) + self.pos_embed[:, 1:]
        if ids_keep is not None:
            tokens = gather_tokens(tokens, ids_keep)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1)
        features = []
        for blk in self.blocks:
            h = blk(h)
            features.append(h)
        features[-1] = self.norm(h)
        return features


# -- DiffMAE ----------------------------------------------------------------------------------


class DiffMAE(MaskedViTEncoder):
    """The DiffMAE pre-training model: the encoder and a denoising decoder (see module docstring).

    Args (besides the encoder's):
        decoder: ``"cross_self"`` or ``"cross"`` (Fig. 3).
        decoder_embed_dim, decoder_depth, decoder_num_heads: the decoder's width, blocks, heads.
        conditioning: ``"masked"`` (DiffMAE: the encoder sees the clean visible patches, the
            decoder denoises the masked ones) or ``"none"`` (plain diffusion, the paper's
            "DDPM" baseline: the encoder sees every patch noised, the decoder denoises them all).
        mask_ratio: the fraction of patches masked in pre-training (0.75 images, 0.9 video).
    """

    def __init__(
        self,
        *,
        decoder: Literal["cross_self", "cross"] = "cross_self",
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        conditioning: Literal["masked", "none"] = "masked",
        mask_ratio: float = 0.75,
        **encoder: Any,
    ) -> None:
        super().__init__(**encoder)
        if decoder not in ("cross_self", "cross"):
            raise ValueError(f"decoder must be 'cross_self' or 'cross', got {decoder!r}")
        if conditioning not in ("masked", "none"):
            raise ValueError(f"conditioning must be 'masked' or 'none', got {conditioning!r}")
        self.decoder = decoder
        self.conditioning = conditioning
        self.mask_ratio = mask_ratio
        self.decoder_sources = top_down_sources(len(self.blocks), decoder_depth)
        dim = decoder_embed_dim
        self.decoder_embed = nn.Linear(self.patch_dim, dim)  # noisy pixels -> tokens
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, self.num_patches, dim), requires_grad=False
        )
        self.decoder_time_proj = Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.decoder_time_embed = TimestepEmbedding(dim, dim)
        self.decoder_blocks = nn.ModuleList(
            DecoderBlock(dim, self.embed_dim, decoder_num_heads,
                         self_attention=decoder == "cross_self")
            for _ in range(decoder_depth)
        )  # fmt: skip
        self.decoder_norm = nn.LayerNorm(dim, eps=1e-6)
        self.decoder_pred = nn.Linear(dim, self.patch_dim)
        init_mae_weights(self)
        with torch.no_grad():
            self.decoder_pos_embed.copy_(sincos_pos_embed(dim, self.grid, cls_token=False))

    def forward_decoder(
        self,
        features: Sequence[torch.Tensor],
        noisy: torch.Tensor,
        ids: torch.Tensor,
        timesteps: torch.Tensor,
    ) -> torch.Tensor:
        """Predict the clean pixels of the patches ``ids`` (B, N) from their noisy pixels
        ``noisy`` (B, N, patch_dim) at diffusion steps ``timesteps`` (B,), each decoder block
        cross-attending to ``features[decoder_sources[j]]``. Returns (B, N, patch_dim)."""
        pos = gather_tokens(self.decoder_pos_embed.expand(noisy.shape[0], -1, -1), ids)
        temb = self.decoder_time_embed(self.decoder_time_proj(timesteps).to(noisy.dtype))
        x = self.decoder_embed(noisy) + pos + temb[:, None]
        for blk, source in zip(self.decoder_blocks, self.decoder_sources):
            x = blk(x, features[source])
        return self.decoder_pred(self.decoder_norm(x))


# -- the MAE baseline -------------------------------------------------------------------------


class MAE(MaskedViTEncoder):
    """MAE (He et al., arXiv:2111.06377): the same encoder and MAE's decoder, keys as the
    official ``MaskedAutoencoderViT`` (``decoder_embed``, ``mask_token``, ``decoder_pos_embed``,
    ``decoder_blocks``, ``decoder_norm``, ``decoder_pred``)."""

    def __init__(
        self,
        *,
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        mask_ratio: float = 0.75,
        **encoder: Any,
    ) -> None:
        super().__init__(**encoder)
        self.mask_ratio = mask_ratio
        dim = decoder_embed_dim
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.decoder_embed = nn.Linear(self.embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, self.num_patches + 1, dim), requires_grad=False
        )
        self.decoder_blocks = nn.ModuleList(
            Block(dim, decoder_num_heads, 4.0, qkv_bias=True, norm_layer=norm_layer)
            for _ in range(decoder_depth)
        )
        self.decoder_norm = norm_layer(dim)
        self.decoder_pred = nn.Linear(dim, self.patch_dim)
        init_mae_weights(self)
        nn.init.normal_(self.mask_token, std=0.02)
        with torch.no_grad():
            self.decoder_pos_embed.copy_(sincos_pos_embed(dim, self.grid, cls_token=True))

    def forward_decoder(self, latent: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """Pixels of every patch (B, L, patch_dim) from the encoder output ``latent``
        (B, 1 + Lk, D) of the patches ``ids_keep``; mask tokens fill the rest."""
        x = self.decoder_embed(latent)
        B, D = x.shape[0], x.shape[-1]
        full = self.mask_token.expand(B, self.num_patches, D).clone()
        full.scatter_(1, ids_keep.unsqueeze(-1).expand(-1, -1, D), x[:, 1:])
        x = torch.cat([x[:, :1], full], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]


# -- fine-tuning ------------------------------------------------------------------------------


class ViTClassifier(MaskedViTEncoder):
    """The encoder for fine-tuning: all patches, learnable position embeddings (initialised
    from the pre-training's), the patch tokens averaged, ``fc_norm``, ``head`` (MAE's
    ``models_vit.py`` with ``global_pool``; timm's ``VisionTransformer(global_pool="avg")``
    has the same keys and outputs)."""

    def __init__(self, *, num_classes: int = 1000, **encoder: Any) -> None:
        super().__init__(learnable_pos_embed=True, **encoder)
        self.num_classes = num_classes
        self.norm = nn.Identity()  # global pooling: fc_norm instead (MAE, timm)
        self.fc_norm = nn.LayerNorm(self.embed_dim, eps=1e-6)
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes else nn.Identity()
        init_mae_weights(self)
        if isinstance(self.head, nn.Linear):
            nn.init.trunc_normal_(self.head.weight, std=2e-5)  # MAE main_finetune.py

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1 + L, D): the tokens after the last block."""
        return self.forward_encoder(x)[-1]

    def forward_head(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc_norm(tokens[:, 1:].mean(dim=1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- sizes ------------------------------------------------------------------------------------

_DECODER = {"decoder_embed_dim": 512, "decoder_depth": 8, "decoder_num_heads": 16}
# Encoder sizes (ViT, Dosovitskiy et al.; MAE's mae_vit_*), the paper's video setting
# (MAE-ST's 16 frames in 2-frame tubelets), and CPU sizes that are not from the paper.
SIZES: dict[str, dict[str, Any]] = {
    "vit_base_patch16": {"embed_dim": 768, "depth": 12, "num_heads": 12, "patch_size": 16},
    "vit_large_patch16": {"embed_dim": 1024, "depth": 24, "num_heads": 16, "patch_size": 16},
    "vit_huge_patch14": {"embed_dim": 1280, "depth": 32, "num_heads": 16, "patch_size": 14},
    "vit_large_patch16_16x224": {
        "embed_dim": 1024, "depth": 24, "num_heads": 16, "patch_size": 16, "num_frames": 16,
        "tubelet_size": 2,
    },
    # Not from the paper: 28 px digits in 4 x 4 patches of 7 px, for the CPU study.
    "tiny_mnist": {
        "img_size": 28, "patch_size": 7, "in_chans": 1, "embed_dim": 64, "depth": 4,
        "num_heads": 4,
    },
    # Not from the paper: 32 px RGB images in 8 px patches, for the paper pipeline's tests.
    "tiny_rgb32": {
        "img_size": 32, "patch_size": 8, "in_chans": 3, "embed_dim": 32, "depth": 2,
        "num_heads": 2,
    },
    # Not from the paper: 4 frames of 16 px in 2 x 4 x 4 tubelets, for tests and CPU runs.
    "tiny_video": {
        "img_size": 16, "patch_size": 4, "in_chans": 3, "num_frames": 4, "tubelet_size": 2,
        "embed_dim": 32, "depth": 2, "num_heads": 2,
    },
}  # fmt: skip
_TINY_DECODER = {
    "tiny_mnist": {"decoder_embed_dim": 64, "decoder_depth": 4, "decoder_num_heads": 4},
    "tiny_rgb32": {"decoder_embed_dim": 32, "decoder_depth": 2, "decoder_num_heads": 2},
    "tiny_video": {"decoder_embed_dim": 32, "decoder_depth": 2, "decoder_num_heads": 2},
}


def _size(size: str) -> dict[str, Any]:
    if size not in SIZES:
        import difflib

        close = difflib.get_close_matches(size, SIZES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {sorted(SIZES)}"
        raise ValueError(f"unknown DiffMAE size {size!r}{hint}")
    return dict(SIZES[size])


def build_pretraining_model(
    size: str, method: Literal["diffmae", "mae", "diffusion"] = "diffmae", **overrides: Any
) -> DiffMAE | MAE:
    """The pre-training model of ``method`` at ``size`` (a key of :data:`SIZES`).

    ``diffmae``: :class:`DiffMAE` (``decoder="cross_self"`` unless overridden); ``mae``:
    :class:`MAE`; ``diffusion``: :class:`DiffMAE` with ``conditioning="none"``. The video size
    masks 90% of its tubelets, images 75%.
    """
    cfg = {**_size(size), **_TINY_DECODER.get(size, _DECODER)}
    cfg["mask_ratio"] = 0.9 if cfg.get("num_frames", 1) > 1 else 0.75
    if method == "mae":
        return MAE(**{**cfg, **overrides})
    if method == "diffusion":
        cfg["conditioning"] = "none"
    elif method != "diffmae":
        raise ValueError(f"method must be 'diffmae', 'mae' or 'diffusion', got {method!r}")
    return DiffMAE(**{**cfg, **overrides})


def build_classifier(size: str, *, num_classes: int = 1000, **overrides: Any) -> ViTClassifier:
    """The fine-tuning model at ``size`` (``drop_path_rate`` etc. in ``overrides``)."""
    return ViTClassifier(**{**_size(size), "num_classes": num_classes, **overrides})


def _factory(size: str, method: str, decoder: str | None = None) -> Any:
    def create(**overrides: Any) -> nn.Module:
        if decoder is not None:
            overrides.setdefault("decoder", decoder)
        return build_pretraining_model(size, method, **overrides)  # type: ignore[arg-type]

    return create


def _classifier_factory(size: str, num_classes: int = 1000) -> Any:
    def create(**overrides: Any) -> ViTClassifier:
        overrides.setdefault("num_classes", num_classes)
        return build_classifier(size, **overrides)

    return create


# One named factory per registered model (paperzoo.diffmae.plugin lists them).
diffmae_vit_base_patch16 = _factory("vit_base_patch16", "diffmae", "cross_self")
diffmae_vit_large_patch16 = _factory("vit_large_patch16", "diffmae", "cross_self")
diffmae_vit_huge_patch14 = _factory("vit_huge_patch14", "diffmae", "cross_self")
diffmae_vit_large_patch16_cross = _factory("vit_large_patch16", "diffmae", "cross")
diffmae_vit_large_patch16_16x224 = _factory("vit_large_patch16_16x224", "diffmae", "cross_self")
diffmae_tiny_mnist = _factory("tiny_mnist", "diffmae", "cross_self")
diffmae_tiny_mnist_cross = _factory("tiny_mnist", "diffmae", "cross")
diffmae_tiny_video = _factory("tiny_video", "diffmae", "cross_self")
diffmae_mae_vit_large_patch16 = _factory("vit_large_patch16", "mae")
diffmae_mae_tiny_mnist = _factory("tiny_mnist", "mae")
diffmae_diffusion_vit_large_patch16 = _factory("vit_large_patch16", "diffusion", "cross_self")
diffmae_diffusion_tiny_mnist = _factory("tiny_mnist", "diffusion", "cross_self")
diffmae_finetune_vit_base_patch16 = _classifier_factory("vit_base_patch16")
diffmae_finetune_vit_large_patch16 = _classifier_factory("vit_large_patch16")
diffmae_finetune_vit_huge_patch14 = _classifier_factory("vit_huge_patch14")
diffmae_finetune_vit_large_patch16_16x224 = _classifier_factory("vit_large_patch16_16x224")
diffmae_finetune_tiny_mnist = _classifier_factory("tiny_mnist", 10)
diffmae_finetune_tiny_video = _classifier_factory("tiny_video", 10)
