"""DiffMAE's training objectives: denoising masked patches, and the two baselines.

- :class:`DiffMAEPretraining` (paper, Sec. 3 and Fig. 3): mask patches, noise the masked ones
  to a step ``t ~ U{0, .., T-1}`` of a DDPM schedule (diffusers' ``DDPMScheduler.add_noise``:
  ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``), encode the visible ones, and regress the
  clean pixels ``x_0`` of the masked ones from ``x_t`` with the decoder: mean squared error
  over the masked patches. With ``conditioning="none"`` (the plain-diffusion baseline) there is
  no mask: every patch is noised, the encoder sees the noisy image and the loss covers every
  patch.
- :class:`MAEPretraining`: MAE's pixel regression from mask tokens, the same masks.
- :class:`Finetune`: supervised fine-tuning of a :class:`~paperzoo.diffmae.model.ViTClassifier`
  with layer-wise lr decay (:func:`paperzoo.train.optim.layer_decay_param_groups`), label
  smoothing or mixup/CutMix soft targets (:class:`paperzoo.train.classification.Classification`).

Targets are the input pixels as the data pipeline normalises them (no per-patch
normalisation: the decoder's targets are the same pixels the noise is added to, so that the
sampler of :mod:`paperzoo.diffmae.inpaint` produces images).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from torch import nn

from paperzoo.diffmae.model import MAE, DiffMAE, ViTClassifier, gather_tokens, random_masking
from paperzoo.train.classification import Classification
from paperzoo.train.optim import layer_decay_param_groups

__all__ = [
    "DiffMAEPretraining",
    "Finetune",
    "MAEPretraining",
    "build_method",
    "ddpm_scheduler",
    "encoder_state_dict",
]


def ddpm_scheduler(
    num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2"
) -> DDPMScheduler:
    """The noise schedule: diffusers' DDPM with x0 ("sample") prediction, no clipping.

    ``beta_schedule``: ``"squaredcos_cap_v2"`` (the cosine schedule of Nichol & Dhariwal) or
    ``"linear"`` (DDPM's 1e-4 .. 0.02).
    """
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=beta_schedule,
        prediction_type="sample",
        clip_sample=False,
        variance_type="fixed_small",
    )


def _images(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, (list, tuple)) else batch


class DiffMAEPretraining(nn.Module):
    """The paperzoo method of a :class:`DiffMAE` model (``training_step`` -> MSE on x0).

    ``scheduler`` defaults to :func:`ddpm_scheduler`; ``mask_ratio`` to the model's.
    """

    def __init__(
        self,
        model: DiffMAE,
        scheduler: DDPMScheduler | None = None,
        *,
        mask_ratio: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, DiffMAE):
            raise TypeError(f"DiffMAEPretraining needs a DiffMAE model, got {type(model).__name__}")
        self.model = model
        self.scheduler = scheduler or ddpm_scheduler()
        self.mask_ratio = model.mask_ratio if mask_ratio is None else mask_ratio

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` (B, C, [T,] H, W) -> {"loss"}; see the module docstring."""
        model = self.model
        B, device = x.shape[0], x.device
        x0 = model.patchify(x)
        L = x0.shape[1]
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (B,), device=device)
        xt = self.scheduler.add_noise(x0, torch.randn_like(x0), t)
        if model.conditioning == "masked":
            ids_keep, ids = random_masking(B, L, self.mask_ratio, device=device)
            features = model.forward_encoder(x, ids_keep)
        else:  # plain diffusion: every patch noised, nothing clean to condition on
            ids = torch.arange(L, device=device).expand(B, L)
            features = model.forward_encoder(model.unpatchify(xt))
        pred = model.forward_decoder(features, gather_tokens(xt, ids), ids, t)
        return {"loss": F.mse_loss(pred, gather_tokens(x0, ids))}

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Batch: images, or (images, labels) whose labels are ignored."""
        return self(_images(batch))

    def trainable_module(self) -> nn.Module:
        return self.model


class MAEPretraining(nn.Module):
    """The paperzoo method of an :class:`MAE` model: MSE on the masked patches' pixels."""

    def __init__(self, model: MAE, *, mask_ratio: float | None = None) -> None:
        super().__init__()
        if not isinstance(model, MAE):
            raise TypeError(f"MAEPretraining needs an MAE model, got {type(model).__name__}")
        self.model = model
        self.mask_ratio = model.mask_ratio if mask_ratio is None else mask_ratio

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        model = self.model
        x0 = model.patchify(x)
        ids_keep, ids_mask = random_masking(x.shape[0], x0.shape[1], self.mask_ratio,
                                            device=x.device)  # fmt: skip
        pred = model.forward_decoder(model.forward_encoder(x, ids_keep)[-1], ids_keep)
        return {"loss": F.mse_loss(gather_tokens(pred, ids_mask), gather_tokens(x0, ids_mask))}

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        return self(_images(batch))

    def trainable_module(self) -> nn.Module:
        return self.model


class Finetune(Classification):
    """Fine-tuning with layer-wise lr decay (MAE ``main_finetune.py``): the stem trains at
    ``layer_decay ** (depth + 1)`` of the lr, block ``i`` at ``layer_decay ** (depth - i)``, the
    head at the lr; no weight decay on biases, norms, ``pos_embed`` and ``cls_token``."""

    def __init__(
        self, model: ViTClassifier, *, layer_decay: float = 0.75, weight_decay: float = 0.05,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(model, **kwargs)
        self.layer_decay = layer_decay
        self.weight_decay = weight_decay

    def param_groups(self) -> list[dict[str, Any]]:
        return layer_decay_param_groups(
            self.model, weight_decay=self.weight_decay, layer_decay=self.layer_decay
        )


def build_method(model: nn.Module, **kwargs: Any) -> nn.Module:
    """The pre-training method of ``model``: DiffMAE (either conditioning) or MAE."""
    if isinstance(model, DiffMAE):
        return DiffMAEPretraining(model, **kwargs)
    if isinstance(model, MAE):
        kwargs.pop("scheduler", None)
        return MAEPretraining(model, **kwargs)
    raise TypeError(f"no pre-training method for {type(model).__name__}")


_ENCODER_PREFIXES = ("patch_embed.", "cls_token", "pos_embed", "blocks.")


def encoder_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's weights of a pre-training state dict, for a :class:`ViTClassifier`.

    MAE's fine-tuning keeps the stem and blocks and drops the decoder and the encoder's final
    ``norm`` (the classifier pools into a new ``fc_norm``).
    """
    return {k: v for k, v in state.items() if k.startswith(_ENCODER_PREFIXES)}
