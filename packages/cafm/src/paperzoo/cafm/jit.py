"""JiT (Just image Transformers) as CAFM's pixel-space generator and discriminator.

Paper: "Continuous Adversarial Flow Models", Shanchuan Lin, Ceyuan Yang, Zhijie Lin, Hao Chen,
Haoqi Fan, arXiv 2604.11521; official code github.com/ByteDance-Seed/Adversarial-Flow-Models
(``models/cafm/jit/{generator,discriminator}.py``, ``configs/models/cafm/jit/h16.yaml``,
``configs/train/cafm/train_cafm_jit.yaml``, ``misc/convert_{from,to}_jit_format.py``). The backbone
is JiT ("Back to Basics: Let Denoising Generative Models Denoise", Tianhong Li and Kaiming He,
arXiv 2511.13720, github.com/LTH14/JiT ``model_jit.py`` and ``util/model_util.py``), which the
official repository asks to be copied in unchanged; this file follows it module by module, so
``state_dict()`` keys are JiT's (``x_embedder.proj{1,2}``, ``blocks.i.attn.{qkv,q_norm,k_norm,proj}``,
``blocks.i.mlp.{w12,w3}``, ``feat_rope{,_incontext}.freqs_{cos,sin}`` buffers, ...).

JiT predicts the clean image x from z = t x + (1 - t) eps (t = 1 data, JiT's convention).
:class:`JiTGenerator` turns that into a velocity in paperzoo's convention (t = 1 noise), as the
official ``Generator``: ``x_pred = JiT(x_t, 1 - t, y)``, ``v = (x_t - x_pred) / clamp(t, 0.05)``.
:class:`JiTDiscriminator` is JiT without its output layer, read on the first token (the first
in-context class token) through ``RMSNorm`` (no affine) and ``Linear(D, 1)`` (``proj_out``), with
the same time flip; it is initialised from the generator's checkpoint (``strict=False``).

Written out rather than imported: JiT is not packaged. Two departures that do not change the
function: the attention is the same float32 softmax written with torch ops (the original builds a
zero bias with ``.cuda()`` and ``torch.cuda.amp``, so it runs only on CUDA), and the block and
final-layer ``@torch.compile`` decorators are left to ``trainer.compile``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.cafm.model import FlowSamplerMixin
from paperzoo.gen.dit import TimestepEmbedder, sincos_pos_embed_2d

__all__ = [
    "JIT_SIZES",
    "JiT",
    "JiTDiscriminator",
    "JiTGenerator",
    "cafm_jit_h_16",
    "cafm_jit_h_16_discriminator",
]

# JiT's factories (model_jit.py): depth, hidden, heads, bottleneck, in-context length and start.
# CAFM post-trains H/16 (configs/models/cafm/jit/h16.yaml).
JIT_SIZES: dict[str, dict[str, int]] = {
    "B/16": dict(depth=12, hidden_size=768, num_heads=12, bottleneck_dim=128,
                 in_context_len=32, in_context_start=4, patch_size=16),
    "L/16": dict(depth=24, hidden_size=1024, num_heads=16, bottleneck_dim=128,
                 in_context_len=32, in_context_start=8, patch_size=16),
    "H/16": dict(depth=32, hidden_size=1280, num_heads=16, bottleneck_dim=256,
                 in_context_len=32, in_context_start=10, patch_size=16),
}  # fmt: skip

# JiT's Denoiser clamps 1 - t at t_eps = 0.05; the official CAFM Generator clamps t the same.
T_EPS = 0.05


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def _rotate_half(x: Tensor) -> Tensor:
    """Interleaved pairs (x0, x1) -> (-x1, x0), as EVA/JiT's ``rotate_half``."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


class VisionRotaryEmbedding(nn.Module):
    """JiT's ``VisionRotaryEmbeddingFast`` (``freqs_for='lang'``): 2-D RoPE over a
    ``grid x grid`` patch grid, ``dim`` frequencies per axis (head_dim = 2 * dim), applied to
    (..., N, head_dim); ``num_cls_token`` leading tokens are left unrotated (cos 1, sin 0).
    The tables are persistent buffers because JiT's checkpoints hold them."""

    def __init__(self, dim: int, grid: int, num_cls_token: int = 0, theta: float = 10000) -> None:
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        pos = torch.arange(grid) / grid * grid
        freqs = torch.einsum("i,f->if", pos, freqs).repeat_interleave(2, dim=-1)  # (grid, dim)
        rows = freqs[:, None, :].expand(grid, grid, dim)
        cols = freqs[None, :, :].expand(grid, grid, dim)
        table = torch.cat([rows, cols], dim=-1).reshape(grid * grid, 2 * dim)
        cos, sin = table.cos(), table.sin()
        if num_cls_token > 0:
            cos = torch.cat([torch.ones(num_cls_token, 2 * dim), cos])
            sin = torch.cat([torch.zeros(num_cls_token, 2 * dim), sin])
        self.register_buffer("freqs_cos", cos)
        self.register_buffer("freqs_sin", sin)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.freqs_cos + _rotate_half(x) * self.freqs_sin


class BottleneckPatchEmbed(nn.Module):
    """p x p patches -> ``bottleneck_dim`` (conv, no bias) -> ``embed_dim`` (1 x 1 conv)."""

    def __init__(
        self, img_size: int, patch_size: int, in_chans: int, pca_dim: int, embed_dim: int
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.num_patches = (img_size // patch_size) ** 2
        self.proj1 = nn.Conv2d(in_chans, pca_dim, patch_size, stride=patch_size, bias=False)
        self.proj2 = nn.Conv2d(pca_dim, embed_dim, kernel_size=1, stride=1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"input {tuple(x.shape[-2:])} does not match the model's {self.img_size} px"
            )
        return self.proj2(self.proj1(x)).flatten(2).transpose(1, 2)


class LabelEmbedder(nn.Module):
    """``num_classes + 1`` rows, the last the null class; no dropout inside (the trainer drops)."""

    def __init__(self, num_classes: int, hidden_size: int) -> None:
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden_size)
        self.num_classes = num_classes

    def forward(self, labels: Tensor) -> Tensor:
        return self.embedding_table(labels)


class Attention(nn.Module):
    """QKV attention with per-head RMSNorm on q and k (weights) and RoPE; softmax in float32."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.q_norm = nn.RMSNorm(head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(head_dim, eps=1e-6)
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, rope: VisionRotaryEmbedding) -> Tensor:
        b, n, c = x.shape
        qkv = (
            self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        q, k, v = rope(self.q_norm(qkv[0])), rope(self.k_norm(qkv[1])), qkv[2]
        weight = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])
        out = weight.softmax(dim=-1).to(v.dtype) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class SwiGLUFFN(nn.Module):
    """SwiGLU with JiT's width: ``int(hidden_dim * 2 / 3)``."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        hidden_dim = int(hidden_dim * 2 / 3)
        self.w12 = nn.Linear(dim, 2 * hidden_dim, bias=True)
        self.w3 = nn.Linear(hidden_dim, dim, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class JiTBlock(nn.Module):
    """adaLN-Zero block with RMSNorm (weights), QK-norm RoPE attention and SwiGLU."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(hidden_size, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads)
        self.norm2 = nn.RMSNorm(hidden_size, eps=1e-6)
        self.mlp = SwiGLUFFN(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(self, x: Tensor, c: Tensor, rope: VisionRotaryEmbedding) -> Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(
            c
        ).chunk(6, dim=-1)
        x = x + gate_msa.unsqueeze(1) * self.attn(
            _modulate(self.norm1(x), shift_msa, scale_msa), rope
        )
        return x + gate_mlp.unsqueeze(1) * self.mlp(_modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    def __init__(self, hidden_size: int, patch_size: int, out_channels: int) -> None:
        super().__init__()
        self.norm_final = nn.RMSNorm(hidden_size, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(_modulate(self.norm_final(x), shift, scale))


class JiT(nn.Module):
    """JiT on (B, in_channels, input_size, input_size) pixels in [-1, 1]: ``forward(x, t, y)``
    with t in [0, 1] (1 = data, JiT's convention) returns the predicted clean image. Class tokens
    (``in_context_len`` copies of the label embedding plus learned positions) join the sequence
    before block ``in_context_start``."""

    def __init__(
        self,
        *,
        input_size: int = 256,
        patch_size: int = 16,
        in_channels: int = 3,
        hidden_size: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_classes: int = 1000,
        bottleneck_dim: int = 128,
        in_context_len: int = 32,
        in_context_start: int = 8,
        final_layer: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = in_channels
        self.patch_size = patch_size
        self.num_heads = num_heads
        self.hidden_size = hidden_size
        self.input_size = input_size
        self.depth = depth
        self.in_context_len = in_context_len
        self.in_context_start = in_context_start
        self.num_classes = num_classes
        self.bottleneck_dim = bottleneck_dim
        self.mlp_ratio = mlp_ratio

        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size)
        self.x_embedder = BottleneckPatchEmbed(
            input_size, patch_size, in_channels, bottleneck_dim, hidden_size
        )
        num_patches = self.x_embedder.num_patches
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, hidden_size), requires_grad=False)
        if in_context_len > 0:
            self.in_context_posemb = nn.Parameter(torch.zeros(1, in_context_len, hidden_size))
            nn.init.normal_(self.in_context_posemb, std=0.02)
        half_head_dim = hidden_size // num_heads // 2
        grid = input_size // patch_size
        self.feat_rope = VisionRotaryEmbedding(half_head_dim, grid)
        self.feat_rope_incontext = VisionRotaryEmbedding(half_head_dim, grid, in_context_len)
        self.blocks = nn.ModuleList(
            [JiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)]
        )
        self.final_layer = (
            FinalLayer(hidden_size, patch_size, self.out_channels) if final_layer else None
        )
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """JiT's init: xavier linears and patch convs, zero biases, N(0, 0.02) label table and
        time MLP, zeroed adaLN modulations and output layer, the sin-cos position table."""

        def _basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)

        self.apply(_basic_init)
        grid = int(self.x_embedder.num_patches**0.5)
        self.pos_embed.data.copy_(sincos_pos_embed_2d(self.hidden_size, grid).unsqueeze(0))
        for conv in (self.x_embedder.proj1, self.x_embedder.proj2):
            nn.init.xavier_uniform_(conv.weight.data.view([conv.weight.shape[0], -1]))
        nn.init.constant_(self.x_embedder.proj2.bias, 0)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)
        if self.final_layer is not None:
            nn.init.constant_(self.final_layer.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(self.final_layer.adaLN_modulation[-1].bias, 0)
            nn.init.constant_(self.final_layer.linear.weight, 0)
            nn.init.constant_(self.final_layer.linear.bias, 0)

    def tokens(self, x: Tensor, t: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W), (B,) JiT time, (B,) labels -> ((B, L + N, D) tokens after the blocks,
        the in-context tokens first when ``in_context_len`` > 0; (B, D) condition)."""
        y_emb = self.y_embedder(y)
        c = self.t_embedder(t) + y_emb
        x = self.x_embedder(x) + self.pos_embed
        for i, block in enumerate(self.blocks):
            if self.in_context_len > 0 and i == self.in_context_start:
                context = y_emb.unsqueeze(1).repeat(1, self.in_context_len, 1)
                x = torch.cat([context + self.in_context_posemb, x], dim=1)
            rope = self.feat_rope if i < self.in_context_start else self.feat_rope_incontext
            x = block(x, c, rope)
        return x, c

    def unpatchify(self, x: Tensor) -> Tensor:
        """(B, N, p*p*C) -> (B, C, H, W)."""
        p, c = self.patch_size, self.out_channels
        h = int(x.shape[1] ** 0.5)
        x = x.reshape(x.shape[0], h, h, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], c, h * p, h * p)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """x (B, C, H, W) noisy image, t (B,) in [0, 1] (1 = clean), y (B,) -> x-prediction."""
        if self.final_layer is None:
            raise ValueError("this JiT was built with final_layer=False")
        tokens, c = self.tokens(x, t, y)
        tokens = tokens[:, self.in_context_len :] if self.in_context_len > 0 else tokens
        return self.unpatchify(self.final_layer(tokens, c))


class JiTGenerator(FlowSamplerMixin, JiT):
    """JiT as CAFM's velocity model (official ``models/cafm/jit/generator.py``), pixels in
    [-1, 1]. ``velocity(x_t, t, y)``: t in [0, 1] with 1 = noise;
    ``v = (x_t - JiT(x_t, 1 - t, y)) / clamp(t, 0.05)``. Sampling defaults to 25 Heun intervals
    (50 evaluations: the official JiT validation's ``steps: 50, sampler: heun``)."""

    output_space = "pixel"
    default_steps = 25

    @property
    def null_class(self) -> int:
        return self.num_classes

    def velocity(self, x_t: Tensor, t: Tensor, y: Tensor) -> Tensor:
        x_pred = self.forward(x_t, 1.0 - t, y)
        return (x_t - x_pred) / t.view(-1, 1, 1, 1).clamp_min(T_EPS)


class JiTDiscriminator(JiT):
    """CAFM's JiT discriminator (official ``models/cafm/jit/discriminator.py``): the JiT backbone,
    the first token through ``proj_out = Sequential(RMSNorm(D, no affine), Linear(D, 1))``.
    ``forward(x_t, t, y) -> (B,)`` in paperzoo's time (fed to JiT as 1 - t)."""

    def __init__(self, **jit: Any) -> None:
        jit.pop("final_layer", None)
        super().__init__(**jit, final_layer=False)
        # nn.RMSNorm(..., elementwise_affine=False) with its default eps, as the official.
        self.proj_out = nn.Sequential(
            nn.RMSNorm(self.hidden_size, elementwise_affine=False),
            nn.Linear(self.hidden_size, 1),
        )

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        tokens, _ = self.tokens(x, 1.0 - t, y)
        return self.proj_out(tokens[:, 0]).reshape(-1)


def jit_kwargs(size: str, **overrides: Any) -> dict[str, Any]:
    if size not in JIT_SIZES:
        raise ValueError(f"unknown JiT size {size!r}; known: {sorted(JIT_SIZES)}")
    return {**JIT_SIZES[size], "input_size": 256, "num_classes": 1000, **overrides}


def jit_discriminator_like(generator: JiT) -> JiTDiscriminator:
    """A fresh discriminator with ``generator``'s JiT shape."""
    return JiTDiscriminator(
        input_size=generator.input_size,
        patch_size=generator.patch_size,
        in_channels=generator.in_channels,
        hidden_size=generator.hidden_size,
        depth=generator.depth,
        num_heads=generator.num_heads,
        mlp_ratio=generator.mlp_ratio,
        num_classes=generator.num_classes,
        bottleneck_dim=generator.bottleneck_dim,
        in_context_len=generator.in_context_len,
        in_context_start=generator.in_context_start,
    )


def cafm_jit_h_16(**overrides: Any) -> JiTGenerator:
    """JiT-H/16 on 256 px ImageNet pixels (``JiT-H-16-256``), 1000 classes + null."""
    return JiTGenerator(**jit_kwargs("H/16", **overrides))


def cafm_jit_h_16_discriminator(**overrides: Any) -> JiTDiscriminator:
    """The JiT-H/16 discriminator (``dis: h16``)."""
    return JiTDiscriminator(**jit_kwargs("H/16", **overrides))
