"""MAViL: Masked Audio-Video Learners.

Huang, Sharma, Xu, Ryali, Fan, Li, Li, Ghosh, Malik, Feichtenhofer, NeurIPS 2023,
arXiv:2212.08071. No official training code or weights were released (the official repository
holds a README only); the fine-tuned classifier's layout follows the authors' inference code as
a third-party benchmark (av-superb) carries it: an audio ViT-B/16 on a 1024 x 128 fbank (512
tokens), a video ViT-B on 8 frames at 224 in 2 x 16 x 16 tubelets (784 tokens), 3 joint blocks
over the concatenated tokens, and a LayerNorm + Linear head on the pooled audio and video
(2 x 768).

The encoders are MAE's masked ViT (:class:`paperzoo.diffmae.model.MaskedViTEncoder`: timm
``Block``/``PatchEmbed``, MAE's keys), reused, not copied, with its MAE initialisation
(:func:`~paperzoo.diffmae.model.init_mae_weights`) and fixed sin-cos positions
(:func:`~paperzoo.diffmae.model.sincos_pos_embed`, which covers the audio's rectangular
time x frequency grid). This file adds what MAViL has on top:

- :class:`MAEDecoder`: MAE's decoder for one modality (mask tokens, fixed sin-cos positions,
  ViT blocks, a linear prediction of each patch: pixels in stage 1, the teacher's contextualised
  features in stage 2);
- :class:`MAViL`: the pre-training model, audio and video encoders on their visible tokens, a
  fusion encoder over both token sets, per-modality decoders and the contrastive projections;
- :class:`MAViLClassifier`: the fine-tuning model, audio-only, video-only or joint.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from timm.models.vision_transformer import Block
from torch import nn

from paperzoo.diffmae.model import (
    MaskedViTEncoder,
    init_linear_and_norm,
    init_mae_weights,
    patchify,
    sincos_pos_embed,
)

__all__ = [
    "SIZES",
    "MAEDecoder",
    "MAViL",
    "MAViLClassifier",
    "build_audio_encoder",
    "build_classifier",
    "build_pretraining_model",
]

Modality = Literal["audio", "video", "joint"]


# timm's blocks pass device/dtype keywords to the norm layer: a partial, not a function.
_layer_norm = functools.partial(nn.LayerNorm, eps=1e-6)


# -- encoders ---------------------------------------------------------------------------------


def build_audio_encoder(
    *, audio_frames: int, mel_bins: int, patch_size: int, learnable_pos_embed: bool = False,
    **vit: Any,
) -> MaskedViTEncoder:  # fmt: skip
    """The audio ViT on a (B, 1, frames, mel_bins) fbank: (frames/p) x (mel_bins/p) patches."""
    if audio_frames % patch_size or mel_bins % patch_size:
        raise ValueError(
            f"a {audio_frames} x {mel_bins} fbank does not split into {patch_size} px patches"
        )
    return MaskedViTEncoder(
        img_size=(audio_frames, mel_bins),  # type: ignore[arg-type]  # timm takes (h, w)
        patch_size=patch_size, in_chans=1, learnable_pos_embed=learnable_pos_embed, **vit,
    )  # fmt: skip


def build_video_encoder(
    *, img_size: int, num_frames: int, tubelet_size: int, patch_size: int,
    learnable_pos_embed: bool = False, **vit: Any,
) -> MaskedViTEncoder:  # fmt: skip
    """The video ViT on (B, 3, T, H, W) clips in tubelet_size x p x p tubelets."""
    return MaskedViTEncoder(
        img_size=img_size, patch_size=patch_size, in_chans=3, num_frames=num_frames,
        tubelet_size=tubelet_size, learnable_pos_embed=learnable_pos_embed, **vit,
    )  # fmt: skip


# -- the decoder ------------------------------------------------------------------------------


class MAEDecoder(nn.Module):
    """MAE's decoder for one modality: (B, Lk, D) visible tokens -> (B, L, out_dim).

    ``decoder_embed`` projects the visible tokens, ``mask_token`` fills the masked places,
    fixed sin-cos ``pos_embed`` over the modality's grid, ``blocks`` (timm ``Block``), ``norm``,
    ``pred``. (AudioMAE's decoder uses shifted local windows on the spectrogram; ours attends
    globally, as MAE's: our choice, see the README.)
    """

    def __init__(
        self, *, grid: Sequence[int], embed_dim: int, decoder_embed_dim: int, decoder_depth: int,
        decoder_num_heads: int, out_dim: int, mlp_ratio: float = 4.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.grid = tuple(grid)
        self.num_patches = math.prod(self.grid)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.pos_embed = nn.Parameter(
            sincos_pos_embed(decoder_embed_dim, self.grid, cls_token=False), requires_grad=False
        )
        self.blocks = nn.ModuleList(
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True,
                  norm_layer=_layer_norm)
            for _ in range(decoder_depth)
        )  # fmt: skip
        self.norm = _layer_norm(decoder_embed_dim)
        self.pred = nn.Linear(decoder_embed_dim, out_dim)
        init_linear_and_norm(self)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, visible: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """``visible`` (B, Lk, D) in the order of ``ids_keep`` (B, Lk) -> (B, L, out_dim)."""
        x = self.decoder_embed(visible)
        B, _, Dd = x.shape
        full = self.mask_token.expand(B, self.num_patches, Dd).clone()
        full = full.scatter(1, ids_keep.unsqueeze(-1).expand(-1, -1, Dd), x)
        h = full + self.pos_embed
        for blk in self.blocks:
            h = blk(h)
        return self.pred(self.norm(h))


# -- the pre-training model --------------------------------------------------------------------


class MAViL(nn.Module):
    """MAViL's pre-training model (paper Fig. 2).

    ``audio_encoder`` and ``video_encoder`` (masked ViTs) encode the visible tokens of each
    modality; the ``fusion_blocks`` (timm ``Block``, then ``fusion_norm``) run over the
    concatenated audio and video tokens; ``audio_decoder`` / ``video_decoder`` reconstruct every
    patch from the fused visible tokens; ``audio_proj`` / ``video_proj`` map each uni-modal
    encoder's mean visible token to the contrastive space.

    ``video=False`` builds the audio-only model (audio MAE: no video encoder, no fusion), the
    study's first arm. ``target_dim`` is the decoders' output size: 0 predicts the patches'
    pixels (stage 1), ``embed_dim`` the teacher's contextualised features (stage 2).
    """

    def __init__(
        self,
        *,
        audio: dict[str, Any],
        video: dict[str, Any] | None,
        embed_dim: int,
        depth: int,
        num_heads: int,
        fusion_depth: int,
        decoder_embed_dim: int,
        decoder_depth: int,
        decoder_num_heads: int,
        proj_dim: int = 256,
        audio_mask_ratio: float = 0.8,
        video_mask_ratio: float = 0.8,
        target_dim: int = 0,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        vit = {"embed_dim": embed_dim, "depth": depth, "num_heads": num_heads,
               "mlp_ratio": mlp_ratio, "norm_layer": _layer_norm}  # fmt: skip
        self.embed_dim = embed_dim
        self.audio_mask_ratio = audio_mask_ratio
        self.video_mask_ratio = video_mask_ratio
        self.target_dim = target_dim
        self.audio_encoder = build_audio_encoder(**audio, **vit)
        self.video_encoder = build_video_encoder(**video, **vit) if video else None
        self.fusion_blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=_layer_norm)
            for _ in range(fusion_depth if video else 0)
        )  # fmt: skip
        self.fusion_norm = _layer_norm(embed_dim) if video and fusion_depth else nn.Identity()
        dec = {"embed_dim": embed_dim, "decoder_embed_dim": decoder_embed_dim,
               "decoder_depth": decoder_depth, "decoder_num_heads": decoder_num_heads,
               "mlp_ratio": mlp_ratio}  # fmt: skip
        a, v = self.audio_encoder, self.video_encoder
        self.audio_decoder = MAEDecoder(grid=a.grid, out_dim=target_dim or a.patch_dim, **dec)
        self.video_decoder = (
            MAEDecoder(grid=v.grid, out_dim=target_dim or v.patch_dim, **dec) if v else None
        )
        self.audio_proj = nn.Linear(embed_dim, proj_dim) if v else None
        self.video_proj = nn.Linear(embed_dim, proj_dim) if v else None
        init_mae_weights(self.audio_encoder)
        if v is not None:
            init_mae_weights(v)
            init_linear_and_norm(self.fusion_blocks)
            init_linear_and_norm(self.audio_proj)
            init_linear_and_norm(self.video_proj)

    @property
    def has_video(self) -> bool:
        return self.video_encoder is not None

    def no_weight_decay(self) -> set[str]:
        names = {"audio_encoder.pos_embed", "audio_encoder.cls_token"}
        if self.has_video:
            names |= {"video_encoder.pos_embed", "video_encoder.cls_token"}
        return names

    def patch_targets(self, audio: torch.Tensor, video: torch.Tensor | None) -> dict[str, Any]:
        """The pixel targets of stage 1: (B, L, patch_dim) per modality."""
        out: dict[str, Any] = {"audio": patchify(audio, self.audio_encoder.patch)}
        if video is not None and self.video_encoder is not None:
            out["video"] = patchify(video, self.video_encoder.patch)
        return out

    def encode(self, x: torch.Tensor, ids_keep: torch.Tensor | None, modality: str) -> torch.Tensor:
        """One uni-modal encoder's last tokens (B, Lk, D), the class token dropped."""
        encoder = self.audio_encoder if modality == "audio" else self.video_encoder
        assert encoder is not None
        return encoder.forward_encoder(x, ids_keep)[-1][:, 1:]

    def fuse(
        self, audio_tokens: torch.Tensor, video_tokens: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fusion encoder over the concatenated tokens; returns them split back."""
        if video_tokens is None or not len(self.fusion_blocks):
            return audio_tokens, video_tokens
        n = audio_tokens.shape[1]
        h = torch.cat([audio_tokens, video_tokens], dim=1)
        for blk in self.fusion_blocks:
            h = blk(h)
        h = self.fusion_norm(h)
        return h[:, :n], h[:, n:]

    def contextual_features(
        self, audio: torch.Tensor, video: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every token of the full (unmasked) inputs after the fusion encoder: the stage-2
        targets, (B, La, D) and (B, Lv, D)."""
        a = self.encode(audio, None, "audio")
        v = self.encode(video, None, "video") if video is not None and self.has_video else None
        return self.fuse(a, v)

    def forward(
        self,
        audio: torch.Tensor,
        video: torch.Tensor | None,
        audio_keep: torch.Tensor,
        video_keep: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        """Encode the kept tokens, fuse, decode.

        ``audio`` (B, 1, frames, mel_bins), ``video`` (B, 3, T, H, W), ``*_keep`` (B, Lk) kept
        token indices. Returns ``audio_tokens`` / ``video_tokens`` (the uni-modal encoders'
        visible tokens, (B, Lk, D)), ``audio_pred`` / ``video_pred`` (B, L, out_dim).
        """
        out: dict[str, torch.Tensor] = {}
        a = self.encode(audio, audio_keep, "audio")
        v = None
        if video is not None and self.has_video:
            assert video_keep is not None
            v = self.encode(video, video_keep, "video")
        out["audio_tokens"] = a
        fa, fv = self.fuse(a, v)
        out["audio_pred"] = self.audio_decoder(fa, audio_keep)
        if v is not None and fv is not None and self.video_decoder is not None:
            out["video_tokens"] = v
            out["video_pred"] = self.video_decoder(fv, video_keep)
        return out

    def embed(self, tokens: torch.Tensor, modality: str) -> torch.Tensor:
        """The contrastive embedding (B, proj_dim) of one modality's visible tokens."""
        proj = self.audio_proj if modality == "audio" else self.video_proj
        assert proj is not None
        return proj(tokens.mean(dim=1))


# -- the fine-tuning model ---------------------------------------------------------------------


class MAViLClassifier(nn.Module):
    """The fine-tuned MAViL: ``modality`` ``"audio"`` (audio ViT, mean-pooled), ``"video"``
    (video ViT) or ``"joint"`` (both, ``fusion_blocks`` over the concatenated tokens, each
    modality mean-pooled, concatenated: 2 x D), then ``head_norm`` (LayerNorm) + ``head``.

    Keys ``audio_encoder.*``, ``video_encoder.*`` and ``fusion_blocks.*`` are the pre-training
    model's (:class:`MAViL`), so a stage-1 or stage-2 checkpoint loads by prefix. Inputs as
    :meth:`MAViL.forward`, unmasked; returns logits (B, num_classes).
    """

    def __init__(
        self,
        *,
        audio: dict[str, Any],
        video: dict[str, Any],
        embed_dim: int,
        depth: int,
        num_heads: int,
        fusion_depth: int,
        num_classes: int = 527,
        modality: Modality = "joint",
        drop_path_rate: float = 0.0,
        mlp_ratio: float = 4.0,
        **_pretraining_only: Any,
    ) -> None:
        super().__init__()
        if modality not in ("audio", "video", "joint"):
            raise ValueError(f"modality must be 'audio', 'video' or 'joint', got {modality!r}")
        self.modality = modality
        self.embed_dim = embed_dim
        self.depth = depth
        vit = {"embed_dim": embed_dim, "depth": depth, "num_heads": num_heads,
               "mlp_ratio": mlp_ratio, "norm_layer": _layer_norm,
               "drop_path_rate": drop_path_rate, "learnable_pos_embed": True}  # fmt: skip
        self.audio_encoder = build_audio_encoder(**audio, **vit) if modality != "video" else None
        self.video_encoder = build_video_encoder(**video, **vit) if modality != "audio" else None
        self.fusion_blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=_layer_norm)
            for _ in range(fusion_depth if modality == "joint" else 0)
        )  # fmt: skip
        width = embed_dim * (2 if modality == "joint" else 1)
        self.head_norm = _layer_norm(width)
        self.head = nn.Linear(width, num_classes)
        for enc in (self.audio_encoder, self.video_encoder):
            if enc is not None:
                init_mae_weights(enc)
        init_linear_and_norm(self.fusion_blocks)
        nn.init.trunc_normal_(self.head.weight, std=2e-5)  # MAE's main_finetune.py
        nn.init.zeros_(self.head.bias)

    @property
    def num_layers(self) -> int:
        return self.depth + len(self.fusion_blocks)

    def no_weight_decay(self) -> set[str]:
        return {f"{p}.{n}" for p in ("audio_encoder", "video_encoder")
                for n in ("pos_embed", "cls_token") if getattr(self, p) is not None}  # fmt: skip

    def layer_id(self, name: str) -> int:
        """The layer of a parameter for layer-wise lr decay: embeddings 0, encoder block i
        i + 1, fusion block j depth + 1 + j, the head num_layers + 1."""
        parts = name.split(".")
        if parts[0] in ("audio_encoder", "video_encoder"):
            if parts[1] == "blocks":
                return int(parts[2]) + 1
            if parts[1] == "norm":
                return self.depth
            return 0
        if parts[0] == "fusion_blocks":
            return self.depth + 1 + int(parts[1])
        return self.num_layers + 1

    def forward_features(
        self, audio: torch.Tensor | None, video: torch.Tensor | None
    ) -> torch.Tensor:
        """The pooled features (B, D) or (B, 2D) that the head reads."""
        a = v = None
        if self.audio_encoder is not None:
            assert audio is not None, "this classifier needs the audio input"
            a = self.audio_encoder.forward_encoder(audio)[-1][:, 1:]
        if self.video_encoder is not None:
            assert video is not None, "this classifier needs the video input"
            v = self.video_encoder.forward_encoder(video)[-1][:, 1:]
        if a is not None and v is not None:
            n = a.shape[1]
            h = torch.cat([a, v], dim=1)
            for blk in self.fusion_blocks:
                h = blk(h)
            return torch.cat([h[:, :n].mean(1), h[:, n:].mean(1)], dim=-1)
        tokens = a if a is not None else v
        assert tokens is not None
        return tokens.mean(1)

    def forward(self, audio: torch.Tensor | None, video: torch.Tensor | None) -> torch.Tensor:
        return self.head(self.head_norm(self.forward_features(audio, video)))


# -- sizes ------------------------------------------------------------------------------------

# ViT-B (the paper's) and CPU sizes that are not from the paper. "audio": the fbank (frames x
# mel bins) and its patch; "video": frames, size, tubelet. Fusion depth 3 is the fine-tuned
# model's joint blocks (av-superb); the pre-training fusion depth is unverified (our choice:
# the same 3, so that the joint blocks start from it). Decoder: MAE's 512 x 8 x 16 (unverified).
SIZES: dict[str, dict[str, Any]] = {
    "vit_base": {
        "audio": {"audio_frames": 1024, "mel_bins": 128, "patch_size": 16},
        "video": {"img_size": 224, "num_frames": 8, "tubelet_size": 2, "patch_size": 16},
        "embed_dim": 768, "depth": 12, "num_heads": 12, "fusion_depth": 3,
        "decoder_embed_dim": 512, "decoder_depth": 8, "decoder_num_heads": 16,
    },
    # Not from the paper: ~1 s of audio (96 fbank frames, 6 x 8 patches) and 4 frames of
    # 32 px (2 x 4 x 4 tubelets), width 64: the CPU study.
    "tiny": {
        "audio": {"audio_frames": 96, "mel_bins": 128, "patch_size": 16},
        "video": {"img_size": 32, "num_frames": 4, "tubelet_size": 2, "patch_size": 8},
        "embed_dim": 64, "depth": 3, "num_heads": 4, "fusion_depth": 1,
        "decoder_embed_dim": 64, "decoder_depth": 1, "decoder_num_heads": 4, "proj_dim": 64,
    },
    # Not from the paper: the smallest model, for the paper pipeline's tests.
    "test": {
        "audio": {"audio_frames": 32, "mel_bins": 128, "patch_size": 16},
        "video": {"img_size": 16, "num_frames": 4, "tubelet_size": 2, "patch_size": 8},
        "embed_dim": 32, "depth": 1, "num_heads": 2, "fusion_depth": 1,
        "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2, "proj_dim": 32,
    },
}  # fmt: skip


def _size(size: str) -> dict[str, Any]:
    if size not in SIZES:
        import difflib

        close = difflib.get_close_matches(size, SIZES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {sorted(SIZES)}"
        raise ValueError(f"unknown MAViL size {size!r}{hint}")
    return {k: dict(v) if isinstance(v, dict) else v for k, v in SIZES[size].items()}


def build_pretraining_model(
    size: str, *, video: bool = True, stage: int = 1, **overrides: Any
) -> MAViL:
    """The pre-training model at ``size``: ``video=False`` is audio MAE alone; ``stage=2``
    predicts ``embed_dim`` features (the stage-1 teacher's) instead of pixels."""
    cfg = _size(size)
    if not video:
        cfg["video"] = None
    if stage == 2:
        cfg["target_dim"] = cfg["embed_dim"]
    return MAViL(**{**cfg, **overrides})


def build_classifier(
    size: str, *, num_classes: int = 527, modality: Modality = "joint", **overrides: Any
) -> MAViLClassifier:
    """The fine-tuning model at ``size`` (``drop_path_rate`` etc. in ``overrides``)."""
    cfg = _size(size)
    return MAViLClassifier(**{**cfg, "num_classes": num_classes, "modality": modality,
                              **overrides})  # fmt: skip


# One named factory per registered model (paperzoo.mavil.plugin lists them).
def mavil_vit_base_pretrain(**overrides: Any) -> MAViL:
    return build_pretraining_model("vit_base", **overrides)


def mavil_vit_base_stage2(**overrides: Any) -> MAViL:
    return build_pretraining_model("vit_base", stage=2, **overrides)


def mavil_vit_base_audioset(**overrides: Any) -> MAViLClassifier:
    overrides.setdefault("num_classes", 527)
    return build_classifier("vit_base", **overrides)


def mavil_vit_base_vggsound(**overrides: Any) -> MAViLClassifier:
    overrides.setdefault("num_classes", 309)
    return build_classifier("vit_base", **overrides)


def mavil_tiny_pretrain(**overrides: Any) -> MAViL:
    return build_pretraining_model("tiny", **overrides)


def mavil_tiny_classifier(**overrides: Any) -> MAViLClassifier:
    overrides.setdefault("num_classes", 20)
    return build_classifier("tiny", **overrides)
