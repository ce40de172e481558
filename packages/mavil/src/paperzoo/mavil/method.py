"""MAViL's objectives (paper Sec. 3): reconstruction, contrast on masked inputs, self-training.

- :func:`masked_mse`: MAE's loss, the mean squared error over the *masked* patches only.
- :func:`info_nce`: the symmetric InfoNCE between two batches of embeddings (positives on the
  diagonal), used for the inter-modal (audio vs video of the same clip) and intra-modal (two
  differently masked views of one modality) contrast.
- :class:`MAViLPretraining`: stage 1 (``teacher=None``: pixels of the masked patches, per-patch
  normalised as MAE's ``norm_pix_loss``) or stage 2 (``teacher``: a frozen stage-1 model; the
  targets are its contextualised audio and video features, the fusion encoder's output on the
  full inputs, layer-normalised), plus ``inter_weight`` x inter-modal and ``intra_weight`` x
  intra-modal contrast. Audio-only models (audio MAE) reconstruct the audio alone.
- :class:`Finetune`: supervised fine-tuning of a :class:`~paperzoo.mavil.model.MAViLClassifier`
  with layer-wise lr decay; cross-entropy for single-label data (VGGSound, the tiny digits),
  binary cross-entropy for multi-label (AudioSet).

Weights and temperatures are unverified (the paper's tables could not be read here); the
defaults are our choices and are marked so in the recipes.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.diffmae.model import random_masking
from paperzoo.mavil.model import MAViL, MAViLClassifier
from paperzoo.train.optim import layer_decay_param_groups

__all__ = [
    "Finetune",
    "MAViLPretraining",
    "encoder_state_dict",
    "info_nce",
    "masked_mse",
    "normalized_patches",
]


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked patches of the per-patch mean squared error.

    ``pred``/``target`` (B, L, C), ``mask`` (B, L) with 1 on masked patches. Visible patches
    contribute nothing (MAE's loss)."""
    per_patch = ((pred - target) ** 2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1)


def normalized_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """MAE's ``norm_pix_loss`` targets: each patch (B, L, C) to zero mean, unit variance."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps) ** 0.5


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: ``a``, ``b`` (B, D), row i of each is a positive pair, the other rows
    negatives; cosine similarity / ``temperature``; the mean of the a->b and b->a
    cross-entropies."""
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    logits = a @ b.t() / temperature
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


def _mask_from_keep(ids_keep: torch.Tensor, num_patches: int) -> torch.Tensor:
    mask = torch.ones(ids_keep.shape[0], num_patches, device=ids_keep.device)
    return mask.scatter(1, ids_keep, 0.0)


def _split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    audio, video = batch[0], batch[1]
    return audio, video


class MAViLPretraining(nn.Module):
    """The paperzoo method of a :class:`MAViL` model: ``training_step`` -> the loss dict.

    Batches are ``(audio (B, 1, F, M), video (B, 3, T, H, W), target)``; the target is unused.
    ``teacher``: the frozen stage-1 model of stage 2 (deep-copied, ``requires_grad=False``,
    eval mode; only the student is trained or saved). Logged: ``loss``, ``recon_audio``,
    ``recon_video``, ``inter``, ``intra``.
    """

    def __init__(
        self,
        model: MAViL,
        *,
        teacher: MAViL | None = None,
        inter_weight: float = 0.0,
        intra_weight: float = 0.0,
        temperature: float = 0.1,
        norm_pix_loss: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(model, MAViL):
            raise TypeError(f"MAViLPretraining needs a MAViL model, got {type(model).__name__}")
        if (inter_weight or intra_weight) and not model.has_video:
            raise ValueError("contrastive terms need the audio-video model (video=True)")
        if teacher is not None:
            if model.target_dim != teacher.embed_dim:
                raise ValueError(
                    f"stage 2 predicts the teacher's {teacher.embed_dim}-d features; build the "
                    f"student with stage=2 (its decoders predict {model.target_dim or 'pixels'})"
                )
            teacher = copy.deepcopy(teacher).eval()
            teacher.requires_grad_(False)
        self.model = model
        # Not a registered submodule: the teacher is neither trained nor checkpointed with
        # the student (Trainer saves trainable_module()).
        self._teacher = [teacher] if teacher is not None else []
        self.inter_weight = inter_weight
        self.intra_weight = intra_weight
        self.temperature = temperature
        self.norm_pix_loss = norm_pix_loss

    @property
    def teacher(self) -> MAViL | None:
        return self._teacher[0] if self._teacher else None

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> MAViLPretraining:  # device moves
        super()._apply(fn, *args, **kwargs)
        if self._teacher:
            self._teacher[0]._apply(fn, *args, **kwargs)
        return self

    def targets(self, audio: torch.Tensor, video: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Per-patch targets (B, L, C) of each modality: stage 1 pixels, stage 2 the
        teacher's contextualised features (no gradient into the teacher)."""
        teacher = self.teacher
        if teacher is None:
            out = self.model.patch_targets(audio, video)
            if self.norm_pix_loss:
                out = {k: normalized_patches(v) for k, v in out.items()}
            return out
        with torch.no_grad():
            teacher.eval()
            fa, fv = teacher.contextual_features(audio, video if self.model.has_video else None)
        out = {"audio": F.layer_norm(fa, fa.shape[-1:])}
        if fv is not None:
            out["video"] = F.layer_norm(fv, fv.shape[-1:])
        return out

    def forward(self, audio: torch.Tensor, video: torch.Tensor | None) -> dict[str, torch.Tensor]:
        m = self.model
        B = audio.shape[0]
        a_keep, _ = random_masking(B, m.audio_encoder.num_patches, m.audio_mask_ratio,
                                   device=audio.device)  # fmt: skip
        v_keep = None
        use_video = video is not None and m.has_video
        if use_video:
            assert m.video_encoder is not None and video is not None
            v_keep, _ = random_masking(B, m.video_encoder.num_patches, m.video_mask_ratio,
                                       device=video.device)  # fmt: skip
        out = m(audio, video if use_video else None, a_keep, v_keep)
        targets = self.targets(audio, video if use_video else None)
        a_mask = _mask_from_keep(a_keep, m.audio_encoder.num_patches)
        logs: dict[str, torch.Tensor] = {}
        logs["recon_audio"] = masked_mse(out["audio_pred"], targets["audio"], a_mask)
        loss = logs["recon_audio"]
        if use_video:
            assert m.video_encoder is not None and v_keep is not None and video is not None
            v_mask = _mask_from_keep(v_keep, m.video_encoder.num_patches)
            logs["recon_video"] = masked_mse(out["video_pred"], targets["video"], v_mask)
            loss = loss + logs["recon_video"]
            za = m.embed(out["audio_tokens"], "audio")
            zv = m.embed(out["video_tokens"], "video")
            if self.inter_weight:
                logs["inter"] = info_nce(za, zv, self.temperature)
                loss = loss + self.inter_weight * logs["inter"]
            if self.intra_weight:
                # A second, independently masked view of each modality through its encoder.
                a2, _ = random_masking(B, m.audio_encoder.num_patches, m.audio_mask_ratio,
                                       device=audio.device)  # fmt: skip
                v2, _ = random_masking(B, m.video_encoder.num_patches, m.video_mask_ratio,
                                       device=video.device)  # fmt: skip
                za2 = m.embed(m.encode(audio, a2, "audio"), "audio")
                zv2 = m.embed(m.encode(video, v2, "video"), "video")
                logs["intra"] = 0.5 * (
                    info_nce(za, za2, self.temperature) + info_nce(zv, zv2, self.temperature)
                )
                loss = loss + self.intra_weight * logs["intra"]
        logs["loss"] = loss
        return logs

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        audio, video = _split_batch(batch)
        return self(audio, video)

    def trainable_module(self) -> nn.Module:
        return self.model


class Finetune(nn.Module):
    """Supervised fine-tuning of a :class:`MAViLClassifier` (layer-wise lr decay).

    ``multilabel``: targets are multi-hot (B, C) floats and the loss is binary cross-entropy
    (AudioSet); otherwise class indices (B,) with cross-entropy and ``label_smoothing``.
    ``spec_augment``: a callable applied to each training fbank (B, 1, F, M), or None.
    """

    def __init__(
        self,
        model: MAViLClassifier,
        *,
        layer_decay: float = 0.75,
        weight_decay: float = 0.05,
        multilabel: bool = False,
        label_smoothing: float = 0.0,
        spec_augment: Any = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.layer_decay = layer_decay
        self.weight_decay = weight_decay
        self.multilabel = multilabel
        self.label_smoothing = label_smoothing
        self.spec_augment = spec_augment

    def param_groups(self) -> list[dict[str, Any]]:
        return layer_decay_param_groups(
            self.model, weight_decay=self.weight_decay, layer_decay=self.layer_decay,
            num_layers=self.model.num_layers, layer_id=self.model.layer_id,
        )  # fmt: skip

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        audio, video, target = batch
        if self.spec_augment is not None:
            audio = self.spec_augment(audio)
        logits = self.model(audio, video)
        if self.multilabel:
            loss = F.binary_cross_entropy_with_logits(logits, target.float())
        else:
            loss = F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        return {"loss": loss}

    def trainable_module(self) -> nn.Module:
        return self.model


def encoder_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The pre-training weights a :class:`MAViLClassifier` reads: the encoders and the fusion
    blocks (decoders, projections and the fixed decoder positions dropped)."""
    keep = ("audio_encoder.", "video_encoder.", "fusion_blocks.")
    return {k: v for k, v in state.items() if k.startswith(keep)}
