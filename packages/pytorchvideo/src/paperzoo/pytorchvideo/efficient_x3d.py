"""Efficient X3D for mobile CPU: X3D rebuilt from PyTorchVideo Accelerator's efficient blocks.

Paper: Haoqi Fan, Tullie Murrell, Heng Wang, et al., "PyTorchVideo: A Deep Learning Library
for Video Understanding", ACM MM 2021, arXiv 2111.09887 (Section "Accelerator"); the X3D
architecture is Feichtenhofer, CVPR 2020, arXiv 2004.04730.
Follows facebookresearch/pytorchvideo ``pytorchvideo/models/accelerator/mobile_cpu/
efficient_x3d.py``, ``.../residual_blocks.py`` and ``pytorchvideo/layers/accelerator/mobile_cpu/``.

An *efficient block* is a small conv/norm/activation unit that trains in its original form and
has a ``convert()`` that rewrites it into a deployable form (norm folded into the conv,
squeeze-excitation 1x1x1 convs as linear layers, Swish as ``x * sigmoid(x)`` so that an int8
backend can run it). The network is X3D-XS/S with two small differences from
:mod:`paperzoo.pytorchvideo.x3d`: every projection shortcut has a norm (res2's first block too),
and the head pools globally (``AdaptiveAvgPool3d``) instead of with a fixed window, so the
same weights serve any clip size. XS and S share weights and topology; they differ only in the
input clip (4 vs 13 frames at 160², per the Accelerator's model zoo).

Deployment (fusion, torch.export, ONNX, int8) lives in :mod:`paperzoo.pytorchvideo.deploy`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from paperzoo.pytorchvideo.x3d import round_width

__all__ = [
    "EFFICIENT_X3D_INPUT_SIZES",
    "Conv3dBnAct",
    "EfficientBlock",
    "EfficientSqueezeExcite",
    "EfficientX3D",
    "EfficientX3DHead",
    "X3dBottleneckBlock",
    "create_efficient_x3d",
    "efficient_x3d_s",
    "efficient_x3d_xs",
]

EFFICIENT_X3D_INPUT_SIZES: dict[str, tuple[int, int]] = {
    "efficient_x3d_xs": (4, 160),
    "efficient_x3d_s": (13, 160),
}

# Stage widths and depths of X3D with width factor 2.0, bottleneck factor 2.25; L is deeper.
_STAGE_DIMS = ((24, 54), (48, 108), (96, 216), (192, 432))
_STAGE_DEPTHS = {"XS": (3, 5, 11, 7), "S": (3, 5, 11, 7), "M": (3, 5, 11, 7), "L": (5, 10, 25, 15)}


class EfficientBlock(nn.Module):
    """Base of the efficient blocks: original form for training, ``convert()`` for deployment.

    ``converted`` records the form; converting twice is an error because the norms are gone.
    """

    converted: bool = False

    def convert(self) -> None:
        """Rewrite this block in place into its deployable form (eval mode only)."""
        raise NotImplementedError

    def _check_convertible(self) -> None:
        if self.converted:
            raise RuntimeError(f"{type(self).__name__} is already in deployable form")
        if self.training:
            raise RuntimeError(
                f"{type(self).__name__}.convert() folds running norm statistics; call .eval() first"
            )


class _SwishMul(nn.Module):
    """Swish written as ``x * sigmoid(x)``: the deployable form, which int8 backends can run
    as quantized sigmoid and mul (``nn.SiLU`` has no quantized kernel)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def _deployable_activation(act: nn.Module) -> nn.Module:
    return _SwishMul() if isinstance(act, nn.SiLU) else act


class Conv3dBnAct(EfficientBlock):
    """Conv3d, optional BatchNorm3d, activation; ``convert()`` folds the norm into the conv.

    The Accelerator has one class per kernel shape (pointwise, 3x3x3 depthwise, 5x1x1,
    1xkxk), because its ``convert()`` also rewrites each Conv3d as Conv2d for QNNPACK. x86
    backends (oneDNN/FBGEMM) run Conv3d natively in fp32 and int8, so one class suffices here.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: Sequence[int] = (1, 1, 1),
        stride: Sequence[int] = (1, 1, 1),
        padding: Sequence[int] = (0, 0, 0),
        groups: int = 1,
        bias: bool = False,
        use_bn: bool = True,
        activation: Callable[[], nn.Module] | None = nn.ReLU,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ):
        super().__init__()
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size=tuple(kernel_size),
            stride=tuple(stride),
            padding=tuple(padding),
            groups=groups,
            bias=bias,
        )
        self.bn = (
            nn.BatchNorm3d(out_channels, eps=norm_eps, momentum=norm_momentum) if use_bn else None
        )
        self.act = nn.Identity() if activation is None else activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    def convert(self) -> None:
        self._check_convertible()
        if self.bn is not None:
            self.conv = torch.nn.utils.fusion.fuse_conv_bn_eval(self.conv, self.bn)
            self.bn = None
        self.act = _deployable_activation(self.act)
        self.converted = True


class EfficientSqueezeExcite(EfficientBlock):
    """Squeeze-excitation over (T, H, W); deployable form uses linear layers, as the
    Accelerator does, since a 1x1x1 conv on a (B, C, 1, 1, 1) tensor is a matmul."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.reduce: nn.Module = nn.Conv3d(channels, reduced, kernel_size=1, bias=True)
        self.act = nn.ReLU()
        self.expand: nn.Module = nn.Conv3d(reduced, channels, kernel_size=1, bias=True)
        self.gate = nn.Sigmoid()
        self.pool = nn.AdaptiveAvgPool3d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> same shape."""
        if self.converted:
            s = self.pool(x).flatten(1)
            s = self.gate(self.expand(self.act(self.reduce(s))))
            return x * s.reshape(s.shape[0], s.shape[1], 1, 1, 1)
        s = x.mean(dim=(2, 3, 4), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))

    def convert(self) -> None:
        self._check_convertible()
        for name in ("reduce", "expand"):
            conv = getattr(self, name)
            fc = nn.Linear(conv.in_channels, conv.out_channels, bias=True)
            with torch.no_grad():
                fc.weight.copy_(conv.weight.flatten(1))
                fc.bias.copy_(conv.bias)
            setattr(self, name, fc)
        self.converted = True


class X3dBottleneckBlock(EfficientBlock):
    """X3D residual bottleneck from efficient blocks.

    pw 1x1x1 -> BN -> act[0]; dw 3x3x3 (spatial stride) -> BN -> SE (optional) -> act[1];
    pw 1x1x1 -> BN; + shortcut (strided 1x1x1 conv + BN when the shape changes); act[2].
    """

    def __init__(
        self,
        *,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        spatial_stride: int = 1,
        se_ratio: float = 0.0625,
        activation: Callable[[], nn.Module] = nn.ReLU,
        inner_act: Callable[[], nn.Module] = nn.SiLU,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ):
        super().__init__()
        norm = {"norm_eps": norm_eps, "norm_momentum": norm_momentum}
        self.shortcut = (
            Conv3dBnAct(
                in_channels,
                out_channels,
                stride=(1, spatial_stride, spatial_stride),
                activation=None,
            )
            if spatial_stride != 1 or in_channels != out_channels
            else None
        )
        self.conv_a = Conv3dBnAct(in_channels, mid_channels, activation=activation, **norm)
        # The activation of the depthwise conv comes after SE, so the conv block has none.
        self.conv_b = Conv3dBnAct(
            mid_channels,
            mid_channels,
            kernel_size=(3, 3, 3),
            stride=(1, spatial_stride, spatial_stride),
            padding=(1, 1, 1),
            groups=mid_channels,
            activation=None,
            **norm,
        )
        self.se = (
            EfficientSqueezeExcite(mid_channels, round_width(mid_channels, se_ratio))
            if se_ratio > 0
            else nn.Identity()
        )
        self.act_b = inner_act()
        self.conv_c = Conv3dBnAct(mid_channels, out_channels, activation=None, **norm)
        self.act = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_c(self.act_b(self.se(self.conv_b(self.conv_a(x)))))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return self.act(shortcut + out)

    def convert(self) -> None:
        self._check_convertible()
        for block in (self.shortcut, self.conv_a, self.conv_b, self.se, self.conv_c):
            if isinstance(block, EfficientBlock):
                block.convert()
        self.act_b = _deployable_activation(self.act_b)
        self.act = _deployable_activation(self.act)
        self.converted = True


class EfficientX3DHead(nn.Module):
    """conv_5 (1x1x1, BN, ReLU) -> global avg pool -> lin_5 (1x1x1 to 2048, ReLU) -> dropout
    -> fc; in eval mode ``head_act`` is applied to the class scores."""

    def __init__(
        self,
        *,
        in_channels: int = 192,
        mid_channels: int = 432,
        out_channels: int = 2048,
        num_classes: int = 400,
        dropout: float = 0.5,
        head_act: Callable[[], nn.Module] | None = None,
    ):
        super().__init__()
        self.conv_5 = Conv3dBnAct(in_channels, mid_channels, activation=nn.ReLU)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.lin_5 = Conv3dBnAct(mid_channels, out_channels, use_bn=False, activation=nn.ReLU)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.proj = nn.Linear(out_channels, num_classes, bias=True)
        self.act = nn.Identity() if head_act is None else head_act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 192, T, H, W) -> (B, num_classes)."""
        x = self.lin_5(self.pool(self.conv_5(x)))
        x = self.proj(self.dropout(x.flatten(1)))
        # Like the Accelerator, the score activation is an inference-time op only.
        return x if self.training else self.act(x)


class EfficientX3D(nn.Module):
    """X3D built from efficient blocks. Input (B, 3, T, H, W); output (B, num_classes)."""

    def __init__(
        self, stem: nn.Sequential, stages: Sequence[nn.Sequential], head: nn.Module | None
    ):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        self.head = head
        self.num_features = 192

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, 192, T, H/32, W/32)."""
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.head is None else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def convert_(self) -> EfficientX3D:
        """Convert every efficient block in place into its deployable form; returns self.

        Numerically equivalent in eval mode (up to float rounding of the folded norms).
        """
        if self.training:
            raise RuntimeError("EfficientX3D.convert_() needs eval mode; call .eval() first")
        for module in list(self.modules()):
            if isinstance(module, EfficientBlock) and not module.converted:
                # Parents convert their children, so skip those already done.
                module.convert()
        return self

    @property
    def is_converted(self) -> bool:
        return all(m.converted for m in self.modules() if isinstance(m, EfficientBlock))


def create_efficient_x3d(
    *,
    num_classes: int = 400,
    dropout: float = 0.5,
    expansion: str = "XS",
    head_act: Callable[[], nn.Module] | None = None,
    enable_head: bool = True,
    activation: Callable[[], nn.Module] = nn.ReLU,
    inner_act: Callable[[], nn.Module] = nn.SiLU,
    se_ratio: float = 0.0625,
) -> EfficientX3D:
    """Build X3D from efficient blocks, with the arguments of the Accelerator's ``create_x3d``.

    ``expansion`` is "XS", "S", "M" or "L" (only L changes the network: deeper stages).
    ``head_act`` is applied to the scores in eval mode (None: logits). Activations are
    zero-argument callables (the Accelerator takes names: "relu", "swish", ...).
    """
    if expansion not in _STAGE_DEPTHS:
        raise ValueError(
            f"unknown expansion {expansion!r}; expected one of {sorted(_STAGE_DEPTHS)}"
        )
    stem = nn.Sequential()
    stem.add_module(
        "conv_xy",
        Conv3dBnAct(
            3,
            24,
            kernel_size=(1, 3, 3),
            stride=(1, 2, 2),
            padding=(0, 1, 1),
            use_bn=False,
            activation=None,
        ),
    )
    stem.add_module(
        "conv_t",
        Conv3dBnAct(
            24, 24, kernel_size=(5, 1, 1), padding=(2, 0, 0), groups=24, activation=activation
        ),
    )
    stages = []
    in_channels = 24
    for (out_channels, mid_channels), depth in zip(_STAGE_DIMS, _STAGE_DEPTHS[expansion]):
        blocks = [
            X3dBottleneckBlock(
                in_channels=in_channels if i == 0 else out_channels,
                mid_channels=mid_channels,
                out_channels=out_channels,
                spatial_stride=2 if i == 0 else 1,
                se_ratio=se_ratio if i % 2 == 0 else 0.0,
                activation=activation,
                inner_act=inner_act,
            )
            for i in range(depth)
        ]
        stages.append(nn.Sequential(*blocks))
        in_channels = out_channels
    head = (
        EfficientX3DHead(num_classes=num_classes, dropout=dropout, head_act=head_act)
        if enable_head
        else None
    )
    return EfficientX3D(stem, stages, head)


def efficient_x3d_xs(num_classes: int = 400, **kwargs: Any) -> EfficientX3D:
    """Efficient X3D-XS (input 4x160²): 3.79 M params."""
    return create_efficient_x3d(num_classes=num_classes, **{"expansion": "XS", **kwargs})


def efficient_x3d_s(num_classes: int = 400, **kwargs: Any) -> EfficientX3D:
    """Efficient X3D-S (input 13x160²): same network as XS, trained on longer clips."""
    return create_efficient_x3d(num_classes=num_classes, **{"expansion": "S", **kwargs})
