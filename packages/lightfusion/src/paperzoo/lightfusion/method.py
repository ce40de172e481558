"""LightFusion training and sampling.

Training (official ``LightFusion.forward`` + ``pretrain_unified_navit.py``, stage 1): the
rectified-flow loss on the generation side only, in paperzoo's convention (t = 1 noise,
:mod:`paperzoo.gen.flow`)::

    t = shift · σ(n) / (1 + (shift - 1) · σ(n)),  n ~ N(0, 1)    (logit-normal, shift 4)
    x_t = (1 - t) x + t ε,   loss = mean ‖v(x_t, t, text) - (ε - x)‖²

The understanding tower is frozen (``freeze_und``: the LM / VLM and the fusion layers' O
projection into its stream); the DiT, the fusion layers and the learned cross-attention
context train. The text is dropped with probability 0.1 (official ``text_cond_dropout_prob``)
by replacing the prompt with the empty one, which classifier-free guidance then uses.

Sampling (official ``eval/*_inference.py``, Bagel-style guidance): 50 steps from t = 1 to 0 on
the shifted grid, text guidance ``v_text = v_∅text + s_text (v - v_∅text)``, and, when an
image condition is given, ``v = v_∅img + s_img (v_text - v_∅img)``, both applied only for t in
the guidance interval (official ``cfg_interval`` [0.7, 1] for editing) and with the optional
``text_channel`` / ``global`` renormalisation of the guided velocity. Our solver is Euler on the
shifted grid (official default: UniPC).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.gen.flow import interpolate, sample_ode, velocity_target

__all__ = [
    "CausalLMPretraining",
    "ClassConditionalWan",
    "LightFusionFlow",
    "WanFlow",
    "guided_velocity",
    "sample_class_conditional",
    "sample_lightfusion",
    "sample_times",
    "shift_time",
    "shifted_grid",
]


def shift_time(t: Tensor, shift: float) -> Tensor:
    """The official timestep shift: s t / (1 + (s - 1) t); s > 1 moves t towards noise."""
    return shift * t / (1 + (shift - 1) * t)


def sample_times(batch: int, shift: float, *, device: Any = None, generator=None) -> Tensor:
    """(batch,) training times: logit-normal σ(N(0, 1)), then :func:`shift_time`."""
    n = torch.randn(batch, device=device, generator=generator)
    return shift_time(torch.sigmoid(n), shift)


def shifted_grid(steps: int, shift: float) -> Tensor:
    """The sampling grid: ``steps + 1`` times from 1 to 0, shifted as in training."""
    return shift_time(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), shift)


def _as_video(x: Tensor) -> Tensor:
    """Images (B, C, H, W) -> one-frame videos (B, C, 1, H, W) for the Wan DiT."""
    return x.unsqueeze(2) if x.ndim == 4 else x


class ClassConditionalWan(nn.Module):
    """The DiT alone: a diffusers Wan transformer whose cross-attention context is a learned
    per-class embedding (``num_classes`` + 1 rows; the last is the null class of label
    dropout and guidance). The tiny study's baseline and the fused model's pretrained DiT."""

    def __init__(self, dit: nn.Module, num_classes: int, *, context_len: int,
                 label_dropout: float = 0.1, num_train_timesteps: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.dit = dit
        self.num_classes, self.context_len = num_classes, context_len
        self.label_dropout = label_dropout
        self.num_train_timesteps = num_train_timesteps
        text_dim = dit.config.text_dim
        self.class_context = nn.Parameter(
            torch.randn(num_classes + 1, context_len, text_dim) * 0.02
        )

    def forward(self, x_t: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """x_t (B, C, [F,] H, W), t (B,) in [0, 1], labels (B,) -> velocity, x_t's shape."""
        if self.training and self.label_dropout > 0:
            drop = torch.rand(y.shape, device=y.device) < self.label_dropout
            y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        out = self.dit(_as_video(x_t), t * self.num_train_timesteps, self.class_context[y]).sample
        return out.reshape(x_t.shape)


class CausalLMPretraining(nn.Module):
    """Next-token cross-entropy of a transformers causal LM on ``(input_ids, attention_mask)``
    batches (padding ignored): the tiny study's LM pretraining, not part of LightFusion."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def training_step(self, batch: Any, step: int) -> dict[str, Tensor]:
        ids, mask = batch[0], batch[1]
        labels = ids.masked_fill(mask == 0, -100)
        return {"loss": self.lm(input_ids=ids, attention_mask=mask, labels=labels).loss}

    def trainable_module(self) -> nn.Module:
        return self.lm


def _flow_loss(velocity_fn, x: Tensor, shift: float) -> dict[str, Tensor]:
    noise = torch.randn_like(x)
    t = sample_times(x.shape[0], shift, device=x.device)
    v = velocity_fn(interpolate(x, noise, t), t)
    return {"loss": F.mse_loss(v.float(), velocity_target(x, noise).float()), "t_mean": t.mean()}


class WanFlow(nn.Module):
    """Rectified flow on a :class:`ClassConditionalWan` (batches ``(images, labels)``)."""

    def __init__(self, model: ClassConditionalWan, *, timestep_shift: float = 4.0) -> None:
        super().__init__()
        self.model, self.timestep_shift = model, timestep_shift

    def training_step(self, batch: Any, step: int) -> dict[str, Tensor]:
        x, y = batch[0], batch[1]
        return _flow_loss(lambda xt, t: self.model(xt, t, y), x, self.timestep_shift)

    def trainable_module(self) -> nn.Module:
        return self.model

    def fsdp_modules(self) -> list[nn.Module]:
        return list(self.model.dit.blocks)


class LightFusionFlow(nn.Module):
    """Stage-1 LightFusion training on batches ``(images (B, C, H, W), input_ids (B, T),
    attention_mask (B, T))``; ``null_ids`` (L,) is the tokenised empty prompt used for text
    dropout (and, at sampling, the unconditional branch)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        null_ids: Tensor,
        timestep_shift: float = 4.0,
        text_dropout: float = 0.1,
        freeze_understanding: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.timestep_shift, self.text_dropout = timestep_shift, text_dropout
        self.register_buffer(
            "null_ids", torch.as_tensor(null_ids, dtype=torch.long), persistent=False
        )
        if freeze_understanding:
            model.freeze_understanding()

    def drop_text(self, ids: Tensor, mask: Tensor, drop: Tensor) -> tuple[Tensor, Tensor]:
        """Replace the prompts of rows ``drop`` (B,) bool with the empty prompt."""
        n = self.null_ids.numel()
        if ids.shape[1] < n:
            raise ValueError(f"prompts of {ids.shape[1]} tokens cannot hold the empty prompt ({n})")
        null = torch.zeros_like(ids)
        null[:, :n] = self.null_ids
        null_mask = torch.zeros_like(mask)
        null_mask[:, :n] = 1
        d = drop[:, None]
        return torch.where(d, null, ids), torch.where(d, null_mask, mask)

    def training_step(self, batch: Any, step: int) -> dict[str, Tensor]:
        x, ids, mask = batch[0], batch[1], batch[2]
        if self.text_dropout > 0:
            drop = torch.rand(ids.shape[0], device=ids.device) < self.text_dropout
            ids, mask = self.drop_text(ids, mask, drop)
        x5 = _as_video(x)
        out = _flow_loss(lambda xt, t: self.model(xt, t, ids, mask).velocity, x5,
                         self.timestep_shift)  # fmt: skip
        return out

    def param_groups(self) -> list[dict]:
        return [{"params": [p for p in self.model.parameters() if p.requires_grad]}]

    def trainable_module(self) -> nn.Module:
        return self.model

    def fsdp_modules(self) -> list[nn.Module]:
        return self.model.fsdp_modules()


def _renorm(guided: Tensor, reference: Tensor, kind: str, minimum: float) -> Tensor:
    """Scale the guided velocity down to the reference's norm (never up), per latent channel
    vector (``text_channel``) or over each sample (``global``)."""
    if kind == "none":
        return guided
    if kind == "global":
        dims = tuple(range(1, guided.ndim))
        ratio = reference.norm(dim=dims, keepdim=True) / (
            guided.norm(dim=dims, keepdim=True) + 1e-8
        )
    elif kind == "text_channel":
        ratio = reference.norm(dim=1, keepdim=True) / (guided.norm(dim=1, keepdim=True) + 1e-8)
    else:
        raise ValueError(f"unknown cfg renorm {kind!r}; use 'none', 'global' or 'text_channel'")
    return guided * ratio.clamp(min=minimum, max=1.0)


def guided_velocity(
    v_cond: Tensor,
    v_no_text: Tensor,
    v_no_image: Tensor | None = None,
    *,
    text_scale: float,
    image_scale: float = 1.0,
    renorm: str = "none",
    renorm_min: float = 0.0,
) -> Tensor:
    """Text then image classifier-free guidance (Bagel / LightFusion inference)."""
    v = v_no_text + text_scale * (v_cond - v_no_text)
    v = _renorm(v, v_cond, renorm, renorm_min)
    if v_no_image is not None and image_scale != 1.0:
        v = v_no_image + image_scale * (v - v_no_image)
    return v


def _call(model: nn.Module, x: Tensor, t: Tensor, cond: Mapping[str, Tensor]) -> Tensor:
    return model(x, t, **cond).velocity


@torch.no_grad()
def sample_lightfusion(
    model: nn.Module,
    cond: Mapping[str, Tensor],
    no_text: Mapping[str, Tensor] | None = None,
    no_image: Mapping[str, Tensor] | None = None,
    *,
    shape: tuple[int, ...],
    steps: int = 50,
    timestep_shift: float = 4.0,
    text_scale: float = 4.0,
    image_scale: float = 1.0,
    cfg_interval: tuple[float, float] = (0.0, 1.0),
    renorm: str = "none",
    renorm_min: float = 0.0,
    generator: torch.Generator | None = None,
    device: Any = None,
) -> Tensor:
    """Samples (B, C, F, H, W) from noise. ``cond`` / ``no_text`` / ``no_image``: the model's
    keyword inputs (``input_ids``, ``attention_mask`` or ``inputs_embeds``) for the full
    condition, without the text (the empty prompt, with the image tokens if any) and without
    the image; guidance applies for t in (cfg_interval[0], cfg_interval[1]]."""
    was_training = model.training
    model.eval()
    noise = torch.randn(shape, generator=generator, device=device)
    lo, hi = cfg_interval

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        v = _call(model, x, t, cond)
        tt = float(t[0])
        if no_text is None or not lo < tt <= hi or (text_scale == 1.0 and image_scale == 1.0):
            return v
        v_nt = _call(model, x, t, no_text)
        v_ni = _call(model, x, t, no_image) if no_image is not None else None
        return guided_velocity(v, v_nt, v_ni, text_scale=text_scale, image_scale=image_scale,
                               renorm=renorm, renorm_min=renorm_min)  # fmt: skip

    try:
        return sample_ode(velocity, noise, t_grid=shifted_grid(steps, timestep_shift))
    finally:
        model.train(was_training)


@torch.no_grad()
def sample_class_conditional(
    model: ClassConditionalWan,
    y: Tensor,
    *,
    shape: tuple[int, ...],
    steps: int = 50,
    timestep_shift: float = 4.0,
    cfg_scale: float = 4.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The DiT alone: samples for labels y (B,) with class guidance (null class)."""
    was_training = model.training
    model.eval()
    noise = torch.randn(shape, generator=generator, device=y.device)
    null = torch.full_like(y, model.num_classes)

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        v = model(x, t, y)
        if cfg_scale == 1.0:
            return v
        return guided_velocity(v, model(x, t, null), text_scale=cfg_scale)

    try:
        return sample_ode(velocity, noise, t_grid=shifted_grid(steps, timestep_shift))
    finally:
        model.train(was_training)
