"""Supervised video classification, the training objective of X3D (and of the tiny baseline).

Cross-entropy on clip labels, as PySlowFast trains X3D on Kinetics (``MODEL.LOSS_FUNC:
cross_entropy``, no weight decay on BatchNorm parameters: ``BN.WEIGHT_DECAY: 0.0``).

Also the baseline of the tiny recipe: :class:`FrameAveraged2D` runs a 2D CNN on every frame
and averages the logits over time, so it can recognise what is in a frame but not how things
move. The 2D CNN of :func:`x3d_xs_2d` is X3D-XS with every temporal kernel set to 1, so the
two models have the same widths, depths and parameter count (minus the temporal taps) and
differ only in temporal modelling.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.pytorchvideo.x3d import X3D, create_x3d

__all__ = ["FrameAveraged2D", "VideoClassification", "x3d_xs_2d"]


class VideoClassification(nn.Module):
    """A paperzoo method: ``model`` maps clips (B, C, T, H, W) to logits (B, num_classes).

    ``training_step`` takes a batch ``(clips, labels)`` (labels int64 (B,) or soft targets
    (B, num_classes), e.g. from mixup) and returns the loss and the batch top-1.
    """

    def __init__(
        self,
        model: nn.Module,
        label_smoothing: float = 0.0,
        norm_weight_decay: float = 0.0,
        channels_last: bool = False,
    ):
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing
        self.norm_weight_decay = norm_weight_decay
        # channels_last_3d: oneDNN's CPU kernels for the depthwise Conv3d run ~2x faster in
        # training in this layout (its contiguous-layout backward is the slow part).
        self.memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        if channels_last:
            self.model.to(memory_format=self.memory_format)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.model(clips.contiguous(memory_format=self.memory_format))

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        clips, labels = batch[0], batch[1]
        logits = self(clips)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        hard = labels if labels.ndim == 1 else labels.argmax(dim=1)
        top1 = (logits.detach().argmax(dim=1) == hard).float().mean()
        return {"loss": loss, "top1": top1}

    def param_groups(self) -> list[dict[str, Any]]:
        """Norm-layer parameters get ``norm_weight_decay`` (PySlowFast: 0); the rest the
        optimizer's weight decay."""
        norm_params, other = [], []
        for module in self.model.modules():
            is_norm = isinstance(
                module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
            )
            for p in module.parameters(recurse=False):
                if p.requires_grad:
                    (norm_params if is_norm else other).append(p)
        groups: list[dict[str, Any]] = [{"params": other}]
        if norm_params:
            groups.append({"params": norm_params, "weight_decay": self.norm_weight_decay})
        return groups

    def trainable_module(self) -> nn.Module:
        return self.model


class FrameAveraged2D(nn.Module):
    """Apply a per-frame model to each of the T frames and average its logits over time.

    ``frame_model`` takes (B*T, C, 1, H, W) and returns (B*T, num_classes).
    Input (B, C, T, H, W) -> (B, num_classes). Frame order cannot change the output.
    """

    def __init__(self, frame_model: nn.Module):
        super().__init__()
        self.frame_model = frame_model

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = clips.shape
        frames = clips.transpose(1, 2).reshape(b * t, c, 1, h, w)
        return self.frame_model(frames).reshape(b, t, -1).mean(dim=1)


def x3d_xs_2d(num_classes: int, crop_size: int, **kwargs: Any) -> FrameAveraged2D:
    """X3D-XS with all temporal kernels 1 (a 2D CNN), frame-averaged: the tiny baseline."""
    frame_model: X3D = create_x3d(
        input_clip_length=1,
        input_crop_size=crop_size,
        model_num_class=num_classes,
        depth_factor=2.2,
        stem_conv_kernel_size=(1, 3, 3),
        stage_conv_kernel_size=((1, 3, 3),) * 4,
        **kwargs,
    )
    return FrameAveraged2D(frame_model)
