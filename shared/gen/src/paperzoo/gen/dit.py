"""DiT / SiT backbones in the official key names.

Paper: "Scalable Diffusion Models with Transformers", William Peebles and Saining Xie,
arXiv 2212.09748; code github.com/facebookresearch/DiT (``models.py``). SiT ("SiT: Exploring
Flow and Diffusion-based Generative Models with Scalable Interpolant Transformers", Ma et al.,
arXiv 2401.08740; github.com/willisma/SiT ``models.py``) is the same network with the same
parameter names; it differs only in how it is called (see :mod:`paperzoo.gen.flow`).

The blocks are built from timm's ``PatchEmbed``, ``Attention`` and ``Mlp`` exactly as the
official ``models.py`` does, so ``state_dict()`` keys ARE the official ones:
``x_embedder.proj``, ``pos_embed``, ``t_embedder.mlp.{0,2}``, ``y_embedder.embedding_table``,
``blocks.i.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2, adaLN_modulation.1}``,
``final_layer.{linear, adaLN_modulation.1}``.

Why not diffusers' ``DiTTransformer2DModel`` as the building block: it gives every block its
own timestep + label embedder (``transformer_blocks.i.norm1.emb``), so its parameter count and
key layout differ from the official checkpoints. It is the parity oracle instead
(:func:`paperzoo.gen.convert.dit_to_diffusers`, ``tests/test_convert.py``).

Extensions used by Adversarial Flow Models (arXiv 2511.22475, github.com/ByteDance-Seed/
Adversarial-Flow-Models, ``models/afm/dit/{generator,discriminator}.py``,
``models/generator_deep.py``) and Continuous Adversarial Flow Models (arXiv 2604.11521, same
repository, ``models/cafm/sit/{discriminator,sit_mod}.py``): no time embedder (1-NFE), the 28
blocks reused ``repeat`` times with a per-pass condition, and the discriminator
:class:`DiTDiscriminator`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from timm.models.vision_transformer import Attention, Mlp, PatchEmbed
from torch import Tensor, nn

__all__ = [
    "DIT_SIZES",
    "DiT",
    "DiTBlock",
    "DiTDiscriminator",
    "FinalLayer",
    "LabelEmbedder",
    "TimestepEmbedder",
    "dit_b_2",
    "dit_kwargs",
    "dit_l_2",
    "dit_s_2",
    "dit_tiny",
    "dit_xl_2",
    "sincos_pos_embed_2d",
    "sit_b_2",
    "sit_l_2",
    "sit_s_2",
    "sit_tiny",
    "sit_xl_2",
]

# (depth, hidden_size, num_heads), the official DiT/SiT configs. M is Adversarial Flow Models'
# size (configs/models/afm/dit/m2.yaml: depth 16, hidden 1024, num_heads 16).
DIT_SIZES: dict[str, tuple[int, int, int]] = {
    "S": (12, 384, 6),
    "B": (12, 768, 12),
    "M": (16, 1024, 16),
    "L": (24, 1024, 16),
    "XL": (28, 1152, 16),
}


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def _norm(kind: str, dim: int) -> nn.Module:
    """Parameter-free norm: DiT's LayerNorm, or the RMSNorm cafm's SiTMod puts in its
    discriminator (``models/cafm/sit/sit_mod.py``: ``nn.RMSNorm(..., elementwise_affine=False,
    eps=1e-6)`` in every block, the final layer and the discriminator head)."""
    if kind == "layer":
        return nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
    if kind == "rms":
        return nn.RMSNorm(dim, elementwise_affine=False, eps=1e-6)
    raise ValueError(f"unknown norm {kind!r}; use 'layer' (DiT, advflow) or 'rms' (cafm)")


def _sincos_1d(dim: int, pos: Tensor) -> Tensor:
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    out = pos.reshape(-1, 1) * omega
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_pos_embed_2d(dim: int, grid_size: int) -> Tensor:
    """(grid_size**2, dim) float32: MAE's / DiT's fixed 2-D sin-cos table (row-major tokens;
    first half embeds the column, second half the row, each as [sin, cos]).

    Written out (in float64, as the official numpy) rather than taken from diffusers'
    ``get_2d_sincos_pos_embed``, which rescales the grid by ``base_size`` and would make this
    module import diffusers; the parity test against diffusers checks it is the same table.
    """
    coords = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")
    return torch.cat([_sincos_1d(dim // 2, cols), _sincos_1d(dim // 2, rows)], dim=1).float()


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of a scalar t (GLIDE's: [cos, sin], max_period 10000, 256 wide) then
    Linear-SiLU-Linear. Written out because the key names ``mlp.{0,2}`` are the official layout.
    It embeds the t it is given: DiT passes 0..999, advflow t * 1000, SiT t in [0, 1]."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True),
        )
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000) -> Tensor:
        """(B,) -> (B, dim) float32."""
        half = dim // 2
        freqs = torch.exp(
            -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        )
        args = t[:, None].float() * freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
        return embedding

    def forward(self, t: Tensor) -> Tensor:
        freq = self.timestep_embedding(t, self.frequency_embedding_size)
        return self.mlp(freq.to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    """Class embedding table with DiT's label dropout: ``num_classes + 1`` rows when
    ``dropout_prob > 0``, the last one the null (unconditional) class."""

    def __init__(self, num_classes: int, hidden_size: int, dropout_prob: float) -> None:
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + int(dropout_prob > 0), hidden_size)
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob

    def token_drop(self, labels: Tensor, force_drop_ids: Tensor | None = None) -> Tensor:
        if force_drop_ids is None:
            drop = torch.rand(labels.shape[0], device=labels.device) < self.dropout_prob
        else:
            drop = force_drop_ids == 1
        return torch.where(drop, self.num_classes, labels)

    def forward(self, labels: Tensor, train: bool, force_drop_ids: Tensor | None = None) -> Tensor:
        if (train and self.dropout_prob > 0) or force_drop_ids is not None:
            labels = self.token_drop(labels, force_drop_ids)
        return self.embedding_table(labels)


class DiTBlock(nn.Module):
    """adaLN-Zero transformer block: shift/scale/gate of both sub-layers from c."""

    def __init__(
        self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0, norm: str = "layer"
    ) -> None:
        super().__init__()
        self.norm1 = _norm(norm, hidden_size)
        self.attn = Attention(hidden_size, num_heads=num_heads, qkv_bias=True)
        self.norm2 = _norm(norm, hidden_size)
        self.mlp = Mlp(
            in_features=hidden_size,
            hidden_features=int(hidden_size * mlp_ratio),
            act_layer=lambda: nn.GELU(approximate="tanh"),
            drop=0,
        )
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size, bias=True)
        )

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(
            c
        ).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(_modulate(self.norm1(x), shift_msa, scale_msa))
        return x + gate_mlp.unsqueeze(1) * self.mlp(_modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    """adaLN-modulated norm, then a linear map of each token to its p*p*C output patch."""

    def __init__(
        self, hidden_size: int, patch_size: int, out_channels: int, norm: str = "layer"
    ) -> None:
        super().__init__()
        self.norm_final = _norm(norm, hidden_size)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True)
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size, bias=True)
        )

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(_modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    """Class-conditional DiT on (B, in_channels, input_size, input_size) latents.

    ``time_embedder=False`` drops ``t_embedder`` (advflow's 1-NFE generator); ``final_layer=False``
    drops the output head (the discriminator's backbone); ``repeat`` > 1 applies the ``depth``
    blocks that many times with shared weights (advflow's 56- and 112-layer XL/2: 28 x 2 / x 4).
    ``norm='rms'`` swaps every parameter-free LayerNorm for RMSNorm (cafm's discriminator).
    """

    def __init__(
        self,
        input_size: int = 32,
        patch_size: int = 2,
        in_channels: int = 4,
        hidden_size: int = 1152,
        depth: int = 28,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_classes: int = 1000,
        class_dropout_prob: float = 0.1,
        learn_sigma: bool = True,
        time_embedder: bool = True,
        final_layer: bool = True,
        repeat: int = 1,
        norm: str = "layer",
    ) -> None:
        super().__init__()
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        self.in_channels = in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.learn_sigma = learn_sigma
        self.patch_size = patch_size
        self.num_heads = num_heads
        self.num_classes = num_classes
        self.hidden_size = hidden_size
        self.depth = depth
        self.repeat = repeat

        self.x_embedder = PatchEmbed(input_size, patch_size, in_channels, hidden_size, bias=True)
        self.t_embedder = TimestepEmbedder(hidden_size) if time_embedder else None
        self.y_embedder = LabelEmbedder(num_classes, hidden_size, class_dropout_prob)
        self.num_patches = self.x_embedder.num_patches
        self.grid_size = self.x_embedder.grid_size[0]
        # Fixed sin-cos embedding, a frozen Parameter as in DiT (so it is in the state dict).
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_patches, hidden_size), requires_grad=False
        )
        self.blocks = nn.ModuleList(
            [DiTBlock(hidden_size, num_heads, mlp_ratio, norm) for _ in range(depth)]
        )
        self.final_layer = (
            FinalLayer(hidden_size, patch_size, self.out_channels, norm) if final_layer else None
        )
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's init: xavier-uniform linears (and patch projection), zero biases, N(0, 0.02)
        label table and time MLP, zeroed adaLN modulations and output layer."""

        def _basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)

        self.apply(_basic_init)
        self.pos_embed.data.copy_(
            sincos_pos_embed_2d(self.hidden_size, self.grid_size).unsqueeze(0)
        )
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.constant_(self.x_embedder.proj.bias, 0)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        if self.t_embedder is not None:
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

    def embed(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, N, D) patch tokens plus the fixed position embedding."""
        return self.x_embedder(x) + self.pos_embed

    def condition(
        self, t: Tensor | None, y: Tensor, force_drop_ids: Tensor | None = None
    ) -> Tensor:
        """(B, D) adaLN condition: the label embedding (dropped as DiT in training, or where
        ``force_drop_ids == 1``) plus the embedding of ``t`` (B,) or scalar, as given (callers
        scale it). ``t`` must be None exactly when the model has no time embedder."""
        c = self.y_embedder(y, self.training, force_drop_ids)
        if self.t_embedder is None:
            if t is not None:
                raise ValueError("this DiT has no t_embedder (time_embedder=False); pass t=None")
            return c
        if t is None:
            raise ValueError("this DiT has a t_embedder; pass t (B,) or a scalar tensor")
        t = torch.as_tensor(t, device=y.device)
        return c + self.t_embedder(t.expand(y.shape[0]) if t.ndim == 0 else t)

    def run_blocks(self, tokens: Tensor, c: Tensor | Sequence[Tensor]) -> Tensor:
        """Apply the ``depth`` blocks ``repeat`` times. ``c``: one (B, D) condition for every
        pass, or a sequence of ``repeat`` of them (advflow's deep models: y + t for each pass)."""
        conditions = [c] * self.repeat if isinstance(c, Tensor) else list(c)
        if len(conditions) != self.repeat:
            raise ValueError(f"got {len(conditions)} conditions for repeat={self.repeat}")
        for c_i in conditions:
            for block in self.blocks:
                tokens = block(tokens, c_i)
        return tokens

    def unpatchify(self, x: Tensor) -> Tensor:
        """(B, N, p*p*C) -> (B, C, H, W)."""
        p, c, h = self.patch_size, self.out_channels, self.grid_size
        x = x.reshape(x.shape[0], h, h, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], c, h * p, h * p)

    def head(self, tokens: Tensor, c: Tensor) -> Tensor:
        """(B, N, D) tokens, (B, D) condition -> (B, out_channels, H, W)."""
        if self.final_layer is None:
            raise ValueError("this DiT was built with final_layer=False")
        return self.unpatchify(self.final_layer(tokens, c))

    def forward(self, x: Tensor, t: Tensor | None, y: Tensor) -> Tensor:
        """x (B, C, H, W), t (B,) or None, y (B,) int labels -> (B, out_channels, H, W): all
        ``out_channels`` as DiT returns them (SiT's forward keeps the first ``in_channels``)."""
        c = self.condition(t, y)
        return self.head(self.run_blocks(self.embed(x), c), c)

    def forward_with_cfg(
        self, x: Tensor, t: Tensor | None, y: Tensor, cfg_scale: float, channels: int | None = None
    ) -> Tensor:
        """Classifier-free guidance as DiT's ``forward_with_cfg``: the unconditional pass uses the
        null class, out = uncond + scale * (cond - uncond) on the first ``channels`` output
        channels (default ``in_channels``; the official code uses 3 "for exact reproducibility",
        pass ``channels=3`` to match it), the rest from the conditional pass.

        Unlike the official, which expects a batch already doubled by the caller, this takes the
        B conditional inputs and doubles them itself: (B, C, H, W) -> (B, out_channels, H, W).
        """
        if self.y_embedder.dropout_prob <= 0:
            raise ValueError("guidance needs the null class row (class_dropout_prob > 0)")
        channels = self.in_channels if channels is None else channels
        if t is not None:
            t = torch.as_tensor(t, device=x.device)
            t = torch.cat([t.expand(x.shape[0]) if t.ndim == 0 else t] * 2)
        null = torch.full_like(y, self.num_classes)
        out = self.forward(torch.cat([x, x]), t, torch.cat([y, null]))
        cond, uncond = out.chunk(2)
        guided = uncond[:, :channels] + cfg_scale * (cond[:, :channels] - uncond[:, :channels])
        return torch.cat([guided, cond[:, channels:]], dim=1)


class DiTDiscriminator(DiT):
    """The adversarial-flow discriminator (advflow ``models/afm/dit/discriminator.py``, cafm
    ``models/cafm/sit/discriminator.py``): the DiT backbone without its output head, a learnable
    token ``dis_embed`` [D] prepended to the patch tokens after ``pos_embed``, and
    ``final_layer = Sequential(norm, Linear(D, 1, bias=False))`` read on that token.

    State-dict keys: the DiT backbone's (no prefix), ``dis_embed`` and ``final_layer.1.weight``.
    ``norm='layer'``: LayerNorm without affine (advflow); ``norm='rms'``: RMSNorm without affine
    in the head AND in every block (cafm's SiTMod), so no norm has a weight in either layout.
    ``forward(x, t, y)`` -> (B,) logits; the time embedding takes t as given (advflow feeds
    t * 1000, cafm's SiT discriminator 1 - t).
    """

    def __init__(self, *, norm: str = "layer", **dit_kwargs) -> None:
        dit_kwargs.pop("final_layer", None)
        super().__init__(**dit_kwargs, final_layer=False, norm=norm)
        # Created after initialize_weights, as the official: randn * 0.02 and PyTorch's default
        # Linear init.
        self.dis_embed = nn.Parameter(torch.randn(self.hidden_size) * 0.02)
        self.final_layer = nn.Sequential(
            _norm(norm, self.hidden_size), nn.Linear(self.hidden_size, 1, bias=False)
        )

    def embed(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1 + N, D): ``dis_embed`` then the position-embedded patches."""
        tokens = super().embed(x)
        token = self.dis_embed.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        return torch.cat([token, tokens], dim=1)

    def head(self, tokens: Tensor, c: Tensor) -> Tensor:
        """(B, 1 + N, D) -> (B,) logits from the ``dis_embed`` token (c is not used: the
        official head is not modulated)."""
        return self.final_layer(tokens[:, 0]).view(-1)


def dit_kwargs(size: str, patch_size: int = 2, **overrides) -> dict:
    """Keyword arguments of DiT-{size}/{patch_size} (DIT_SIZES), updated with ``overrides``."""
    if size not in DIT_SIZES:
        raise ValueError(f"unknown DiT size {size!r}; known: {sorted(DIT_SIZES)}")
    depth, hidden_size, num_heads = DIT_SIZES[size]
    kwargs = dict(depth=depth, hidden_size=hidden_size, num_heads=num_heads, patch_size=patch_size)
    return {**kwargs, **overrides}


def _create_dit(size: str, **kwargs) -> DiT:
    return DiT(**dit_kwargs(size, **kwargs))


# Official DiT / SiT sizes: 256 px ImageNet latents (4 x 32 x 32), learn_sigma (8 output
# channels), 1001 label rows. A SiT checkpoint has exactly the DiT layout; SiT differs in its
# time convention, handled by paperzoo.gen.flow.SiTVelocity.
def dit_s_2(**kwargs) -> DiT:
    return _create_dit("S", **kwargs)


def dit_b_2(**kwargs) -> DiT:
    return _create_dit("B", **kwargs)


def dit_l_2(**kwargs) -> DiT:
    return _create_dit("L", **kwargs)


def dit_xl_2(**kwargs) -> DiT:
    return _create_dit("XL", **kwargs)


def sit_s_2(**kwargs) -> DiT:
    return _create_dit("S", **kwargs)


def sit_b_2(**kwargs) -> DiT:
    return _create_dit("B", **kwargs)


def sit_l_2(**kwargs) -> DiT:
    return _create_dit("L", **kwargs)


def sit_xl_2(**kwargs) -> DiT:
    return _create_dit("XL", **kwargs)


# Not from the papers: 2 blocks of width 64 on 4 x 8 x 8 latents, for CPU tests and baselines.
_TINY = dict(input_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4, num_classes=10)


def dit_tiny(**kwargs) -> DiT:
    return DiT(**{**_TINY, **kwargs})


def sit_tiny(**kwargs) -> DiT:
    return DiT(**{**_TINY, **kwargs})
