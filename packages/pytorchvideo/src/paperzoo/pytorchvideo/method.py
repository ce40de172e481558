"""The baseline of the tiny recipe (X3D itself trains with the shared
:class:`paperzoo.train.classification.Classification`: cross-entropy on clip labels, as
PySlowFast trains X3D on Kinetics, ``MODEL.LOSS_FUNC: cross_entropy``, no weight decay on
BatchNorm parameters, ``BN.WEIGHT_DECAY: 0.0``).

:class:`FrameAveraged2D` runs a 2D CNN on every frame and averages the logits over time, so it
can recognise what is in a frame but not how things move. The 2D CNN of :func:`x3d_xs_2d` is X3D-XS with every temporal kernel set to 1, so the
two models have the same widths, depths and parameter count (minus the temporal taps) and
differ only in temporal modelling.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from paperzoo.pytorchvideo.x3d import X3D, create_x3d

__all__ = ["FrameAveraged2D", "x3d_xs_2d"]


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
