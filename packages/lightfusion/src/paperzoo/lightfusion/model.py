"""LightFusion: fusing a public understanding model and a public generation model.

Zeyu Wang, Zilong Chen et al., "LightFusion" (arXiv 2510.22946; the base model of VQ-VA World,
arXiv 2511.20573). Follows the official code, github.com/chenhuigou/VQ-VA-World, ``modeling/lightfusion/`` (read, not copied):
``qwen25vl_navit_fusion.py`` (``QwenMMAttention``, ``QwenMMAttentionLayer``, the layer loop of
``Qwen2_5_VLTextModel.forward_train``) and ``lightfusion.py`` (``LightFusion.forward``).

The two base models keep their own blocks untouched:

- the understanding tower, a causal LM / VLM from ``transformers`` (the paper: Qwen2.5-VL-7B,
  28 layers), runs its decoder layers on the text (and ViT) tokens;
- the generation tower, a DiT from ``diffusers`` (the paper: Wan2.2-TI2V-5B, 30 blocks, as
  :class:`diffusers.WanTransformer3DModel`), runs its blocks on the noisy latent tokens. Its
  own cross-attention context (T5 text in Wan) is replaced by one learned tensor,
  ``vgen_model_cross_att_context`` (official: initialised from a pre-extracted T5 context);
- after each layer pair a :class:`FusionLayer` (official ``QwenMMAttentionLayer``) lets the two
  streams attend jointly: per-stream RMSNorm and Q/K/V/O projections, one shared QK-norm, RoPE
  on the joint sequence, and one softmax attention over both streams
  (:func:`paperzoo.kernels.attention`). The O projections start at zero, so at initialisation
  the fused model computes exactly what the two base models compute alone.

Layer pairing (:func:`pair_layers`, as the official loop): step ``i`` runs LM layer ``i``
(when the LM has one), then DiT block ``i`` (when the DiT has one), then fusion layer ``i``
when ``i < min(L_und, L_gen) - 1`` (``"min"``) or ``i < max(L_und, L_gen) - 1`` (``"max"``).
Qwen2.5-VL-7B (28) with Wan2.2-5B (30): ``"max"`` gives 29 fusion layers (after steps 0-28;
steps 28 and 29 have no LM layer, the LM stream is carried through), ``"min"`` 27. The
official image-editing / IntelligentBench scripts pass ``max``; ``t2i_inference.py``'s
default is ``min``. The official loader reads the count from the checkpoint's keys
(:mod:`paperzoo.lightfusion.convert` does).

Where we differ (our choice, not from the paper): the official attention uses Qwen2.5-VL's
3-D M-RoPE over the packed sequence; here the fusion RoPE is 1-D, text at positions 0..T-1 and
the latent tokens at T, T+1, ... in raster order (any causal LM works). The official sequence
is packed (varlen); here it is a padded batch with a boolean mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.kernels import attention

__all__ = [
    "TINY_DIT",
    "TINY_LM",
    "FusionAttention",
    "FusionLayer",
    "LightFusion",
    "LightFusionOutput",
    "fusion_params",
    "lightfusion_base",
    "lightfusion_qwen25vl_7b_wan22_5b",
    "lightfusion_tiny",
    "load_diffusers_folder",
    "pair_layers",
    "tiny_dit",
    "tiny_lm",
]


def pair_layers(
    num_und_layers: int, num_gen_layers: int, *, mode: str = "max", standalone: int = 0
) -> list[tuple[int | None, int | None, int | None]]:
    """The official schedule: a list of steps ``(lm_layer, dit_block, fusion_layer)``, each
    ``None`` where that step runs none. ``standalone`` LM layers run first, alone (official
    ``standalone_num_vlm_layers``, 0 in every released script)."""
    if mode not in ("min", "max"):
        raise ValueError(f"unknown fusion layer mode {mode!r}; use 'min' or 'max'")
    if not 0 <= standalone <= num_und_layers:
        raise ValueError(f"standalone={standalone} must be within 0..{num_und_layers}")
    num_fusion = (min if mode == "min" else max)(num_und_layers, num_gen_layers) - 1
    steps: list[tuple[int | None, int | None, int | None]] = [
        (i, None, None) for i in range(standalone)
    ]
    for i in range(max(num_und_layers - standalone, num_gen_layers)):
        und = i + standalone if i < num_und_layers - standalone else None
        gen = i if i < num_gen_layers else None
        steps.append((und, gen, i if i < num_fusion else None))
    return steps


class _RMSNorm(nn.Module):
    """RMSNorm as Qwen2's (fp32 statistics, weight applied in the input dtype): the official
    fusion layers use ``Qwen2RMSNorm`` whatever the base LM is."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def _rotate_half(x: Tensor) -> Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def rope_cos_sin(positions: Tensor, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """positions (B, N) -> cos, sin (B, 1, N, head_dim), Qwen2 / Llama's half-split layout."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = positions.float()[..., None] * inv.to(positions.device)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos()[:, None], emb.sin()[:, None]


class FusionAttention(nn.Module):
    """Joint attention over the understanding and generation streams (official
    ``QwenMMAttention``): Q/K/V (with bias) and O (no bias) per stream, one shared QK RMSNorm
    over the head dimension, RoPE, softmax over the concatenated keys, and each stream's
    outputs through its own O projection (both zero at initialisation)."""

    def __init__(
        self,
        und_dim: int,
        gen_dim: int,
        *,
        hidden_size: int,
        num_heads: int,
        num_kv_heads: int | None = None,
        qk_norm: bool = True,
        eps: float = 1e-6,
        rope_theta: float = 1_000_000.0,
    ) -> None:
        super().__init__()
        num_kv_heads = num_kv_heads or num_heads
        if hidden_size % num_heads or num_heads % num_kv_heads:
            raise ValueError(f"hidden {hidden_size}, heads {num_heads}, kv heads {num_kv_heads}")
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = hidden_size // num_heads
        self.rope_theta = rope_theta
        q, kv = num_heads * self.head_dim, num_kv_heads * self.head_dim
        self.q_und_proj = nn.Linear(und_dim, q)
        self.k_und_proj = nn.Linear(und_dim, kv)
        self.v_und_proj = nn.Linear(und_dim, kv)
        self.o_und_proj = nn.Linear(q, und_dim, bias=False)
        self.q_gen_proj = nn.Linear(gen_dim, q)
        self.k_gen_proj = nn.Linear(gen_dim, kv)
        self.v_gen_proj = nn.Linear(gen_dim, kv)
        self.o_gen_proj = nn.Linear(q, gen_dim, bias=False)
        self.q_norm: nn.Module = _RMSNorm(self.head_dim, eps) if qk_norm else nn.Identity()
        self.k_norm: nn.Module = _RMSNorm(self.head_dim, eps) if qk_norm else nn.Identity()
        self.zero_init()

    def zero_init(self) -> None:
        """Zero both O projections (official ``zero_init_mm_attn``)."""
        nn.init.zeros_(self.o_und_proj.weight)
        nn.init.zeros_(self.o_gen_proj.weight)

    def _heads(self, x: Tensor, heads: int) -> Tensor:
        return x.unflatten(-1, (heads, self.head_dim)).transpose(1, 2)

    def forward(
        self, und: Tensor, gen: Tensor, positions: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """und (B, Nu, Du), gen (B, Ng, Dg), positions (B, Nu + Ng), mask bool
        (B, 1, Nu + Ng, Nu + Ng) True = attend -> the two streams' updates (B, Nu, Du),
        (B, Ng, Dg)."""
        nu = und.shape[1]
        q = torch.cat([self._heads(self.q_und_proj(und), self.num_heads),
                       self._heads(self.q_gen_proj(gen), self.num_heads)], dim=2)  # fmt: skip
        k = torch.cat([self._heads(self.k_und_proj(und), self.num_kv_heads),
                       self._heads(self.k_gen_proj(gen), self.num_kv_heads)], dim=2)  # fmt: skip
        v = torch.cat([self._heads(self.v_und_proj(und), self.num_kv_heads),
                       self._heads(self.v_gen_proj(gen), self.num_kv_heads)], dim=2)  # fmt: skip
        q, k = self.q_norm(q), self.k_norm(k)
        cos, sin = rope_cos_sin(positions, self.head_dim, self.rope_theta)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        if self.num_kv_heads != self.num_heads:
            rep = self.num_heads // self.num_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        out = attention(q, k, v, attn_mask=mask).transpose(1, 2).flatten(2)
        return self.o_und_proj(out[:, :nu]), self.o_gen_proj(out[:, nu:])


class FusionLayer(nn.Module):
    """Per-stream pre-norm, :class:`FusionAttention`, per-stream residual (official
    ``QwenMMAttentionLayer``; attribute names as the official keys)."""

    def __init__(self, und_dim: int, gen_dim: int, *, eps: float = 1e-6, **attn: Any) -> None:
        super().__init__()
        self.mm_attn = FusionAttention(und_dim, gen_dim, eps=eps, **attn)
        self.llm_norm = _RMSNorm(und_dim, eps)
        self.vgen_norm = _RMSNorm(gen_dim, eps)

    def forward(
        self, und: Tensor, gen: Tensor, positions: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        du, dg = self.mm_attn(self.llm_norm(und), self.vgen_norm(gen), positions, mask)
        return und + du, gen + dg


def _joint_mask(text_mask: Tensor, num_gen: int) -> Tensor:
    """(B, T) bool valid text -> (B, 1, T + G, T + G) bool: text causal over valid text (it
    never sees the latents), latents see all valid text and all latents (official
    ``nested_attention_masks`` of a text-to-image sample). A padded text query sees only
    itself, so no row is empty."""
    b, t = text_mask.shape
    n = t + num_gen
    idx = torch.arange(n, device=text_mask.device)
    valid = torch.cat([text_mask, text_mask.new_ones(b, num_gen)], dim=1)
    causal = idx[None, :] <= idx[:, None]
    gen_rows = (idx >= t)[:, None] & torch.ones(n, n, dtype=torch.bool, device=idx.device)
    allowed = (causal | gen_rows)[None] & valid[:, None, :]
    allowed = allowed | torch.eye(n, dtype=torch.bool, device=idx.device)[None]
    return allowed[:, None]


@dataclass
class LightFusionOutput:
    """``velocity`` (B, C, F, H, W) the DiT's prediction (noise - data); ``und_hidden``
    (B, T, D) the LM's final normed hidden states; ``logits`` (B, T, V) when asked for."""

    velocity: Tensor
    und_hidden: Tensor
    logits: Tensor | None = None


def _decoder(vlm: nn.Module) -> nn.Module:
    """The decoder stack of a transformers causal LM (``model``) or of a VLM such as
    Qwen2.5-VL (``model.language_model``)."""
    inner = vlm.model
    return getattr(inner, "language_model", inner)


class LightFusion(nn.Module):
    """A causal LM / VLM (``vision_language_model``, a transformers ``*ForCausalLM``) fused with
    a diffusers :class:`~diffusers.WanTransformer3DModel` (``vgen_model``).

    ``fusion_mode``: ``"max"`` or ``"min"`` (:func:`pair_layers`). Fusion attention width and
    heads are the DiT's (official ``use_vgen_for_mm_attn=True``: hidden = DiT dim, heads =
    kv heads = DiT heads). ``context_len`` rows of the DiT's text width make the learned
    cross-attention context (official: Wan's ``text_len`` 512 x ``text_dim`` 4096).
    """

    def __init__(
        self,
        vision_language_model: nn.Module,
        vgen_model: nn.Module,
        *,
        fusion_mode: str = "max",
        standalone: int = 0,
        context_len: int = 512,
        qk_norm: bool = True,
        num_train_timesteps: int = 1000,
        rope_theta: float | None = None,
    ) -> None:
        super().__init__()
        self.vision_language_model = vision_language_model
        self.vgen_model = vgen_model
        self.fusion_mode, self.standalone = fusion_mode, standalone
        self.num_train_timesteps = num_train_timesteps
        lm_cfg = self._lm_config()
        wan = vgen_model.config
        gen_dim = wan.num_attention_heads * wan.attention_head_dim
        und_dim = lm_cfg.hidden_size
        self.steps = pair_layers(lm_cfg.num_hidden_layers, wan.num_layers, mode=fusion_mode,
                                 standalone=standalone)  # fmt: skip
        num_fusion = sum(s[2] is not None for s in self.steps)
        if rope_theta is None:
            rope = getattr(lm_cfg, "rope_parameters", None) or {}
            rope_theta = float(rope.get("rope_theta", getattr(lm_cfg, "rope_theta", 1e6)))
        self.mm_attn_layers = nn.ModuleList(
            FusionLayer(und_dim, gen_dim, eps=lm_cfg.rms_norm_eps, hidden_size=gen_dim,
                        num_heads=wan.num_attention_heads, qk_norm=qk_norm,
                        rope_theta=rope_theta)
            for _ in range(num_fusion)
        )  # fmt: skip
        self.vgen_model_cross_att_context = nn.Parameter(
            torch.randn(context_len, wan.text_dim) * 0.002
        )

    def _lm_config(self) -> Any:
        cfg = self.vision_language_model.config
        return getattr(cfg, "text_config", None) or cfg

    def zero_init_fusion(self) -> None:
        for layer in self.mm_attn_layers:
            layer.mm_attn.zero_init()

    def freeze_understanding(self) -> None:
        """Official ``freeze_und``: the whole LM / VLM frozen, and the fusion layers' O
        projection into the LM stream zeroed and frozen (``zero_freeze_mm_attn_und_branch``),
        so the understanding outputs stay those of the base model."""
        self.vision_language_model.requires_grad_(False)
        self.vision_language_model.eval()
        for layer in self.mm_attn_layers:
            nn.init.zeros_(layer.mm_attn.o_und_proj.weight)
            layer.mm_attn.o_und_proj.weight.requires_grad_(False)

    def train(self, mode: bool = True) -> LightFusion:
        super().train(mode)
        if not any(p.requires_grad for p in self.vision_language_model.parameters()):
            self.vision_language_model.eval()  # frozen tower: no dropout
        return self

    def fsdp_modules(self) -> list[nn.Module]:
        """The FSDP units: every LM decoder layer, DiT block and fusion layer."""
        return [*_decoder(self.vision_language_model).layers, *self.vgen_model.blocks,
                *self.mm_attn_layers]  # fmt: skip

    # -- the two towers' pieces, called exactly as their own forward calls them ------------
    def _lm_inputs(
        self, input_ids: Tensor | None, attention_mask: Tensor | None, inputs_embeds: Tensor | None
    ) -> tuple[Tensor, Any, tuple[Tensor, Tensor], Tensor | None]:
        from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

        dec = _decoder(self.vision_language_model)
        h = dec.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        position_ids = torch.arange(h.shape[1], device=h.device)[None]
        # Qwen2-VL / Qwen2.5-VL text towers take 3-D M-RoPE ids (text-only: the same 1-D ids on
        # all three axes) and build their mask without position ids, as their forward does.
        rope = getattr(dec.config, "rope_parameters", None) or getattr(
            dec.config, "rope_scaling", None
        )
        mrope = isinstance(rope, dict) and "mrope_section" in rope
        rope_ids = position_ids[None].expand(3, h.shape[0], -1) if mrope else position_ids
        layer_ids = None if mrope else position_ids
        kw = dict(config=dec.config, inputs_embeds=h, attention_mask=attention_mask, cache=None,
                  position_ids=layer_ids)  # fmt: skip
        masks = {"full_attention": create_causal_mask(**kw)}
        if getattr(dec, "has_sliding_layers", False):
            masks["sliding_attention"] = create_sliding_window_causal_mask(**kw)
        return h, masks, dec.rotary_emb(h, rope_ids), layer_ids

    def _lm_layer(
        self, i: int, h: Tensor, masks: Any, pos_emb: Any, position_ids: Tensor
    ) -> Tensor:
        dec = _decoder(self.vision_language_model)
        layer_types = getattr(dec.config, "layer_types", None) or ["full_attention"] * len(
            dec.layers
        )
        return dec.layers[i](h, attention_mask=masks[layer_types[i]], position_embeddings=pos_emb,
                             position_ids=position_ids)  # fmt: skip

    def _dit_inputs(self, latents: Tensor, t: Tensor, context: Tensor) -> tuple:
        w = self.vgen_model
        rotary = w.rope(latents)
        h = w.patch_embedding(latents).flatten(2).transpose(1, 2).contiguous()
        timestep = t * self.num_train_timesteps
        temb, proj, ctx, _ = w.condition_embedder(timestep, context, None, timestep_seq_len=None)
        return h, temb, proj.unflatten(1, (6, -1)), ctx, rotary

    def _dit_head(self, h: Tensor, temb: Tensor, shape: Sequence[int]) -> Tensor:
        w = self.vgen_model
        b, _, f, hh, ww = shape
        p_t, p_h, p_w = w.config.patch_size
        shift, scale = (w.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        h = (w.norm_out(h.float()) * (1 + scale) + shift).type_as(h)
        h = w.proj_out(h).reshape(b, f // p_t, hh // p_h, ww // p_w, p_t, p_h, p_w, -1)
        return h.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)

    def context(self, batch: int) -> Tensor:
        """The learned cross-attention context (B, context_len, text_dim) fed to the DiT."""
        return self.vgen_model_cross_att_context[None].expand(batch, -1, -1)

    def forward(
        self,
        latents: Tensor,
        t: Tensor,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        *,
        inputs_embeds: Tensor | None = None,
        return_logits: bool = False,
    ) -> LightFusionOutput:
        """latents (B, C, F, H, W) noisy x_t, t (B,) in [0, 1] (1 = noise), input_ids (B, T)
        with attention_mask (B, T) 1 = token (or ``inputs_embeds`` (B, T, D): text and ViT
        tokens already embedded) -> :class:`LightFusionOutput`."""
        und, masks, pos_emb, position_ids = self._lm_inputs(
            input_ids, attention_mask, inputs_embeds
        )
        b, tlen = und.shape[:2]
        gen, temb, proj, ctx, rotary = self._dit_inputs(latents, t, self.context(b))
        text_mask = (torch.ones(b, tlen, dtype=torch.bool, device=und.device)
                     if attention_mask is None else attention_mask.bool())  # fmt: skip
        ng = gen.shape[1]
        joint_mask = _joint_mask(text_mask, ng)
        positions = torch.arange(tlen + ng, device=und.device)[None].expand(b, -1)
        blocks = self.vgen_model.blocks
        for lm_i, dit_i, fus_i in self.steps:
            if lm_i is not None:
                und = self._lm_layer(lm_i, und, masks, pos_emb, position_ids)
            if dit_i is not None:
                gen = blocks[dit_i](gen, ctx, proj, rotary)
            if fus_i is not None:
                und, gen = self.mm_attn_layers[fus_i](und, gen, positions, joint_mask)
        und = _decoder(self.vision_language_model).norm(und)
        velocity = self._dit_head(gen, temb, latents.shape)
        logits = self.vision_language_model.lm_head(und) if return_logits else None
        return LightFusionOutput(velocity=velocity, und_hidden=und, logits=logits)


def fusion_params(und_dim: int, gen_dim: int, num_layers: int, *, heads: int) -> int:
    """Parameters of ``num_layers`` fusion layers (attention width = ``gen_dim``)."""
    head_dim = gen_dim // heads
    und = 3 * (und_dim * gen_dim + gen_dim) + gen_dim * und_dim
    gen = 3 * (gen_dim * gen_dim + gen_dim) + gen_dim * gen_dim
    return num_layers * (und + gen + 2 * head_dim + und_dim + gen_dim)


# -- factories ----------------------------------------------------------------------------------

# The tiny towers of the CPU study (not from the paper): a 2-layer Qwen2 LM over a word-level
# vocabulary and a 3-block Wan DiT on 14 x 14 one-channel digits (patch 2: 49 tokens). The
# counts differ on purpose, so the pairing's carry-through step is exercised.
TINY_LM = dict(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
               rms_norm_eps=1e-6, tie_word_embeddings=True)  # fmt: skip
TINY_DIT = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32,
                in_channels=1, out_channels=1, text_dim=32, freq_dim=64, ffn_dim=128,
                num_layers=3, rope_max_seq_len=64)  # fmt: skip
TINY_CONTEXT_LEN = 4


def tiny_lm(**overrides: Any) -> nn.Module:
    """A random transformers ``Qwen2ForCausalLM`` of :data:`TINY_LM`, built offline."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(**{**TINY_LM, **overrides})
    cfg._attn_implementation = "sdpa"
    return Qwen2ForCausalLM(cfg)


def tiny_dit(**overrides: Any) -> nn.Module:
    """A random diffusers ``WanTransformer3DModel`` of :data:`TINY_DIT`."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(**{**TINY_DIT, **overrides})


def lightfusion_tiny(*, fusion_mode: str = "max", **kwargs: Any) -> LightFusion:
    """The study's fused model (14 x 14 digits): :func:`tiny_lm` + :func:`tiny_dit`, 2 fusion layers
    (``max(2, 3) - 1``); not from the paper."""
    kwargs.setdefault("context_len", TINY_CONTEXT_LEN)
    return LightFusion(tiny_lm(), tiny_dit(), fusion_mode=fusion_mode, **kwargs)


def lightfusion_qwen25vl_7b_wan22_5b(
    vlm_path: str,
    vgen_path: str,
    *,
    fusion_mode: str = "max",
    dtype: str = "bfloat16",
    **kwargs: Any,
) -> LightFusion:
    """The paper's pair, from local folders: ``vlm_path`` a Qwen2.5-VL-7B(-Instruct)
    transformers folder, ``vgen_path`` a diffusers Wan2.2-TI2V-5B folder (the ``transformer``
    sub-folder, or the pipeline root that holds it). Nothing is downloaded."""
    from pathlib import Path

    from diffusers import WanTransformer3DModel
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch_dtype = getattr(torch, dtype)
    vlm = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        vlm_path, torch_dtype=torch_dtype, local_files_only=True
    )
    sub = "transformer" if (Path(vgen_path) / "transformer").is_dir() else None
    dit = load_diffusers_folder(WanTransformer3DModel, Path(vgen_path) / sub if sub else vgen_path)
    return LightFusion(vlm, dit, fusion_mode=fusion_mode, **kwargs).to(torch_dtype)


def load_diffusers_folder(cls: Any, folder: Any) -> nn.Module:
    """A diffusers model from a local ``save_pretrained`` folder (config + safetensors, sharded
    or not), strict. Written out because ``from_pretrained`` of a model with fp32-kept modules
    (Wan) needs accelerate's low-memory loading, which is not a dependency here."""
    from pathlib import Path

    from safetensors.torch import load_file

    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors next to config.json")
    model = cls.from_config(cls.load_config(str(folder)))
    state: dict[str, Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    model.load_state_dict(state, strict=True)
    return model


def lightfusion_base(**kwargs: Any) -> LightFusion:
    """Two towers given as modules: ``lightfusion_base(vision_language_model=LM,
    vgen_model=DIT, ...)``, or the paper's pair with ``vlm_path=`` and ``vgen_path=``."""
    if "vlm_path" in kwargs:
        return lightfusion_qwen25vl_7b_wan22_5b(kwargs.pop("vlm_path"), kwargs.pop("vgen_path"),
                                                **kwargs)  # fmt: skip
    if "vision_language_model" in kwargs:
        return LightFusion(kwargs.pop("vision_language_model"), kwargs.pop("vgen_model"), **kwargs)
    raise TypeError(
        "lightfusion_base needs vlm_path= and vgen_path= (local Qwen2.5-VL-7B and diffusers "
        "Wan2.2-TI2V-5B folders) or vision_language_model= and vgen_model= modules; "
        "lightfusion_tiny builds the CPU size"
    )


# Fusion layers of the paper's pair (Qwen2.5-VL-7B hidden 3584; Wan2.2-5B dim 3072, 24 heads).
PAPER_FUSION_PARAMS = {
    "max": fusion_params(3584, 3072, 29, heads=24),
    "min": fusion_params(3584, 3072, 27, heads=24),
}
