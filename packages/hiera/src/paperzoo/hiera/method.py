"""Hiera's training objectives: MAE pretraining (``hiera_mae``) and supervised fine-tuning.

MAE for Hiera (Ryali et al., ICML 2023, arXiv:2306.00989, Sec. 3 and 4; He et al., "Masked
Autoencoders Are Scalable Vision Learners", arXiv:2111.06377). Follows the official
``hiera/hiera_mae.py`` (``MaskedAutoencoderHiera``, github.com/facebookresearch/hiera):

- Masking drops whole *mask units* (8x8 tokens at stage 1; 1x8x8 on video), so the encoder
  runs on a shorter sequence and mask-unit attention never mixes kept and dropped units.
  Mask ratio 0.6 on images, 0.9 on video.
- The encoder uses one q-pool fewer than the classifier (``q_pool=2`` for 4 stages), so each
  kept unit is still 2x2 tokens at the end. The outputs of the pooled stages are projected
  by strided convs to that resolution and summed with the last stage ("multi-scale fusion"),
  then normalized (``encoder_norm``: here the encoder's own ``norm``).
- A ViT decoder (8 blocks of 512, 16 heads) sees visible tokens plus mask tokens in spatial
  order with its own position embedding, and predicts the pixels of each 16x16 patch
  (``patch_stride * q_stride ** q_pool``); on video only the first frame of each 2-frame
  token is predicted ("time-strided" loss).
- Targets are per-patch normalized pixels (``(p - mean) / sqrt(var + 1e-6)``, unbiased var);
  the loss is the mean squared error over the masked patches only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.hiera.model import Hiera, HieraBlock, model_configs, undo_windowing
from paperzoo.train.optim import layer_decay_param_groups as shared_layer_decay_param_groups

__all__ = [
    "HieraClassifier",
    "HieraMAE",
    "hiera_finetune",
    "hiera_mae",
    "layer_decay_param_groups",
]


def _fuse(head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a fusion conv to each kept unit: (B, U, *mu, C) -> (B, U, *mu', C')."""
    if isinstance(head, nn.Identity):
        return x
    B, U = x.shape[:2]
    y = head(x.flatten(0, 1).movedim(-1, 1))  # (B*U, C, *mu) -> (B*U, C', *mu')
    return y.movedim(1, -1).reshape(B, U, *y.shape[2:], y.shape[1])


class HieraMAE(nn.Module):
    """Masked autoencoder with a Hiera encoder; state-dict layout of the official
    ``MaskedAutoencoderHiera`` with the encoder under ``encoder.`` (see
    :func:`paperzoo.hiera.convert.convert_official_mae_state_dict`).

    Args:
        encoder: a :class:`Hiera` built with ``num_classes=0`` (its ``norm`` is the MAE's
            ``encoder_norm``) and the MAE's ``q_pool`` (2 for the paper's 4-stage models).
        decoder_embed_dim, decoder_depth, decoder_num_heads: the decoder (512, 8, 16 in the paper).
        mask_ratio: fraction of mask units dropped; default 0.6 for images, 0.9 for video.
        norm_pix_loss: normalize each target patch (the paper's setting).
    """

    def __init__(
        self,
        encoder: Hiera,
        *,
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        mask_ratio: float | None = None,
        norm_pix_loss: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(encoder.head, nn.Identity):
            raise ValueError("HieraMAE needs an encoder built with num_classes=0")
        unrolls = len(encoder.stage_ends) - 1
        for d, (mu, s) in enumerate(zip(encoder.mask_unit_size, encoder.q_stride)):
            if mu != s**unrolls:
                raise ValueError(
                    f"MAE drops whole mask units, which needs mask_unit_size == q_stride ** "
                    f"(#stages - 1) in every dim; dim {d} has {mu} vs {s}**{unrolls}"
                )
        self.encoder = encoder
        video = len(encoder.input_size) == 3
        self.mask_ratio = (0.9 if video else 0.6) if mask_ratio is None else mask_ratio
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        self.norm_pix_loss = norm_pix_loss
        q_pool, q_stride = encoder.q_pool, encoder.q_stride
        dim_out = encoder.num_features
        self.mask_unit_spatial_shape_final = [
            m // s**q_pool for m, s in zip(encoder.mask_unit_size, q_stride)
        ]
        self.tokens_spatial_shape_final = [
            n // s**q_pool for n, s in zip(encoder.tokens_spatial_shape, q_stride)
        ]

        # Multi-scale fusion: each pooled stage's units, conv-strided down to the final unit.
        conv = nn.Conv3d if video else nn.Conv2d
        self.multi_scale_fusion_heads = nn.ModuleList()
        unit = list(encoder.mask_unit_size)
        for end in encoder.stage_ends[:q_pool]:
            kernel = [u // f for u, f in zip(unit, self.mask_unit_spatial_shape_final)]
            unit = [u // s for u, s in zip(unit, q_stride)]
            self.multi_scale_fusion_heads.append(
                conv(encoder.blocks[end].dim_out, dim_out, kernel_size=kernel, stride=kernel)
            )
        self.multi_scale_fusion_heads.append(nn.Identity())  # last stage: already final

        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.decoder_embed = nn.Linear(dim_out, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, math.prod(self.tokens_spatial_shape_final), decoder_embed_dim)
        )
        self.decoder_blocks = nn.ModuleList(
            HieraBlock(
                decoder_embed_dim, decoder_embed_dim, decoder_num_heads, norm_layer=norm_layer
            )
            for _ in range(decoder_depth)
        )
        self.decoder_norm = norm_layer(decoder_embed_dim)
        self.pred_stride = encoder.patch_stride[-1] * q_stride[-1] ** q_pool
        # Predicts a 2D patch per token, also on video (the time-strided loss).
        self.decoder_pred = nn.Linear(
            decoder_embed_dim, self.pred_stride ** min(2, len(q_stride)) * encoder.in_chans
        )
        self._init_weights()

    # Official MAE init: xavier Linear (encoder included), zero biases, LayerNorm (1, 0), the
    # patch conv initialized like a Linear; the fusion convs keep torch's default init.
    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.zeros_(m.bias)
                nn.init.ones_(m.weight)
        w = self.encoder.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    # -- encoder / decoder ----------------------------------------------------------------

    def forward_encoder(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fused, normalized features of the kept units: (B, #kept, *final unit, C)."""
        q_pool = self.encoder.q_pool
        stages = [*range(q_pool), len(self.encoder.stage_ends) - 1]  # later stages: same res.
        feats = self.encoder.forward_intermediates(
            x, mask=mask, indices=stages, stop_early=True, intermediates_only=True
        )
        fused = sum(_fuse(h, f) for h, f in zip(self.multi_scale_fusion_heads, feats))
        return self.encoder.norm(fused)

    def forward_decoder(
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict every patch. Returns pred (B, L, pixels) and the keep mask at prediction
        resolution (B, L) bool, both in spatial (raster) order."""
        x = self.decoder_embed(x)
        B, U = mask.shape
        unit = x.shape[2:-1]
        full = x.new_zeros(B, U, *unit, x.shape[-1])
        full[mask] = x.flatten(0, 1)
        keep = mask.view(B, U, *([1] * (len(unit) + 1)))
        full = torch.where(keep, full, self.mask_token.view(*([1] * (len(unit) + 2)), -1))
        full = undo_windowing(
            full, self.tokens_spatial_shape_final, self.mask_unit_spatial_shape_final
        )
        pred_mask = keep.expand(B, U, *unit, 1)
        pred_mask = undo_windowing(
            pred_mask, self.tokens_spatial_shape_final, self.mask_unit_spatial_shape_final
        )
        x = full.reshape(B, -1, full.shape[-1]) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x)), pred_mask.reshape(B, -1)

    def pixel_targets(self, x: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Target pixels of the ``masked`` (B, L) patches: (#masked, pixels), normalized per
        patch if ``norm_pix_loss``. Pixel order follows the official code: (C, p, p) on images,
        (p, p, C) on video, where only the first frame of each temporal token is predicted."""
        p = self.pred_stride
        if x.ndim == 4:
            label = x.permute(0, 2, 3, 1).unfold(1, p, p).unfold(2, p, p)  # B, h, w, C, p, p
            label = label.flatten(1, 2).flatten(2)
        else:
            x = x[:, :, :: self.encoder.patch_stride[0]]
            label = x.unfold(3, p, p).unfold(4, p, p)  # B, C, t, h, w, p, p
            label = label.permute(0, 2, 3, 4, 5, 6, 1).flatten(1, 3).flatten(2)
        label = label[masked]
        if self.norm_pix_loss:
            mean = label.mean(dim=-1, keepdim=True)
            var = label.var(dim=-1, keepdim=True)
            label = (label - mean) / (var + 1.0e-6) ** 0.5
        return label

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, [T,] H, W) -> (loss, pred, target, mask) like the official model.

        ``mask``: (B, #mask units) bool, True = visible; drawn at ``mask_ratio`` when None.
        ``pred`` and ``target`` are (#masked patches, pixels).
        """
        if mask is None:
            mask = self.encoder.get_random_mask(x, self.mask_ratio)
        latent = self.forward_encoder(x, mask)
        pred, pred_keep = self.forward_decoder(latent, mask)
        masked = ~pred_keep
        target = self.pixel_targets(x, masked)
        pred = pred[masked]
        return F.mse_loss(pred, target), pred, target, mask

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Batch: a clip/image tensor, or a (tensor, label) pair whose label is ignored."""
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        loss = self(x)[0]
        return {"loss": loss}

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """Encoder weights in classifier keys, without the MAE's fused-feature norm (the
        official fine-tuning re-initializes ``norm`` and ``head``)."""
        return {
            k: v
            for k, v in self.encoder.state_dict().items()
            if not k.startswith(("norm.", "head."))
        }


def hiera_mae(
    model: str = "hiera_base_224",
    *,
    q_pool: int | None = None,
    decoder_embed_dim: int = 512,
    decoder_depth: int = 8,
    decoder_num_heads: int = 16,
    mask_ratio: float | None = None,
    norm_pix_loss: bool = True,
    **encoder_kwargs: Any,
) -> HieraMAE:
    """The ``hiera_mae`` method: MAE around the named Hiera size (e.g. ``"hiera_base_16x224"``).

    ``q_pool`` defaults to one fewer than the number of stage transitions (2 for the paper's
    4-stage models, as the official ``mae_hiera_*``); ``encoder_kwargs`` go to the encoder.
    """
    configs = model_configs()
    if model not in configs:
        import difflib

        close = difflib.get_close_matches(model, configs, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {sorted(configs)}"
        raise ValueError(f"unknown Hiera model {model!r}{hint}")
    cfg = {**configs[model], **encoder_kwargs, "num_classes": 0}
    cfg["q_pool"] = len(cfg["stages"]) - 2 if q_pool is None else q_pool
    return HieraMAE(
        Hiera(**cfg),
        decoder_embed_dim=decoder_embed_dim,
        decoder_depth=decoder_depth,
        decoder_num_heads=decoder_num_heads,
        mask_ratio=mask_ratio,
        norm_pix_loss=norm_pix_loss,
    )


# -- supervised fine-tuning ----------------------------------------------------------------


def layer_decay_param_groups(
    model: Hiera, *, weight_decay: float, layer_decay: float
) -> list[dict[str, Any]]:
    """AdamW groups with layer-wise lr decay (BEiT / MAE fine-tuning), as ``lr_scale``.

    Layer 0 is the patch embedding and position embeddings, block ``i`` is layer ``i + 1``, and
    the final norm and head are layer ``depth + 1`` (scale 1). Biases, norm weights and
    position embeddings get no weight decay. The ViT rule of
    :func:`paperzoo.train.optim.layer_decay_param_groups`, which Hiera's names follow.
    """
    return shared_layer_decay_param_groups(
        model, weight_decay=weight_decay, layer_decay=layer_decay,
        no_weight_decay=model.no_weight_decay(),
    )  # fmt: skip


class HieraClassifier(nn.Module):
    """Supervised training / fine-tuning of a :class:`Hiera` classifier.

    Cross-entropy with optional label smoothing; with ``mixup`` (timm's ``Mixup``: mixup and
    CutMix with label smoothing folded into soft targets) the loss is soft-target CE, as in the
    MAE / Hiera fine-tuning recipes. ``layer_decay < 1`` turns on layer-wise lr decay.
    """

    def __init__(
        self,
        model: Hiera,
        *,
        label_smoothing: float = 0.0,
        mixup: Any = None,
        layer_decay: float = 1.0,
        weight_decay: float = 0.05,
    ) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing
        self.mixup = mixup
        self.layer_decay = layer_decay
        self.weight_decay = weight_decay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Sequence[torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Batch: (inputs (B, C, [T,] H, W), labels (B,) int64)."""
        x, y = batch[0], batch[1]
        if self.mixup is not None:
            x, soft = self.mixup(x, y)
            logits = self.model(x)
            loss = torch.sum(-soft * F.log_softmax(logits, dim=-1), dim=-1).mean()
            return {"loss": loss}
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        acc = (logits.detach().argmax(-1) == y).float().mean()
        return {"loss": loss, "acc": acc}

    def param_groups(self) -> list[dict[str, Any]]:
        return layer_decay_param_groups(
            self.model, weight_decay=self.weight_decay, layer_decay=self.layer_decay
        )

    def trainable_module(self) -> nn.Module:
        return self.model


def hiera_finetune(
    model: str = "hiera_base_224",
    *,
    label_smoothing: float = 0.0,
    layer_decay: float = 1.0,
    weight_decay: float = 0.05,
    **model_kwargs: Any,
) -> HieraClassifier:
    """The ``hiera_finetune`` method around a freshly built Hiera size (``model_kwargs`` go to
    it); load pretrained encoder weights with ``method.model.load_state_dict(..., strict=False)``
    or :func:`paperzoo.hiera.convert.load_checkpoint`."""
    from paperzoo.hiera import model as models

    if model not in model_configs():
        raise ValueError(f"unknown Hiera model {model!r}; known: {sorted(model_configs())}")
    return HieraClassifier(
        getattr(models, model)(**model_kwargs),
        label_smoothing=label_smoothing,
        layer_decay=layer_decay,
        weight_decay=weight_decay,
    )
