"""X3D: Expanding Architectures for Efficient Video Recognition.

Paper: Christoph Feichtenhofer, CVPR 2020, arXiv 2004.04730.
Built as in PyTorchVideo (Fan et al. 2021, arXiv 2111.09887):
facebookresearch/pytorchvideo ``pytorchvideo/models/x3d.py`` and ``pytorchvideo/models/hub/x3d.py``.
Official Kinetics-400 configs: facebookresearch/SlowFast ``configs/Kinetics/X3D_*.yaml``.

X3D is a ResNet of channel-wise separable 3D bottlenecks expanded from a tiny 2D net along
time, frame rate, resolution, width, bottleneck width and depth. All sizes share one
topology; they differ in input size (XS 4x160², S 13x160², M 16x224², L 16x312²) and in
depth (L has depth factor 5.0, the others 2.2):

    stem   conv 1x3x3 (stride 1,2,2) -> depthwise conv 5x1x1 -> BN -> ReLU        24 ch
    res2-5 bottleneck blocks: 1x1x1 -> BN -> ReLU -> dw 3x3x3 (first block stride 2)
           -> BN -> SE (every other block) -> Swish -> 1x1x1 -> BN, + shortcut, ReLU
    head   1x1x1 conv -> BN -> ReLU -> avg pool -> 1x1x1 conv (2048) -> ReLU -> dropout -> fc

Module names are ours; :mod:`paperzoo.pytorchvideo.convert` maps PyTorchVideo's keys
(``blocks.N...``) onto them. One difference from PyTorchVideo's builder by default: the head
returns logits (``head_activation=None``); PyTorchVideo applies softmax in the forward pass,
while PySlowFast applies it only at test time. Pass ``head_activation=nn.Softmax`` to get
PyTorchVideo's behaviour.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from paperzoo.kernels.layers import round_width as _round_width

__all__ = [
    "X3D",
    "SqueezeExcite3d",
    "X3DBlock",
    "X3DHead",
    "X3DStem",
    "create_x3d",
    "round_repeats",
    "round_width",
    "x3d_l",
    "x3d_m",
    "x3d_s",
    "x3d_xs",
]

# Input clip (frames, crop) each size was trained with; the head's pooling window follows it.
X3D_INPUT_SIZES: dict[str, tuple[int, int]] = {
    "x3d_xs": (4, 160),
    "x3d_s": (13, 160),
    "x3d_m": (16, 224),
    "x3d_l": (16, 312),
}


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """Scale a channel count by ``multiplier`` and round to a multiple of ``divisor``.

    Same rule as PyTorchVideo/PySlowFast (round half up, never drop more than 10%), which the
    parameter counts of the released checkpoints depend on; PyTorchVideo's X3D defaults (8).
    """
    return _round_width(width, multiplier, min_width=min_width, divisor=divisor)


def round_repeats(repeats: int, multiplier: float) -> int:
    """Scale a block count by the depth factor, rounding up."""
    if not multiplier:
        return repeats
    return math.ceil(multiplier * repeats)


class SqueezeExcite3d(nn.Module):
    """Squeeze-and-excitation over (T, H, W) (Hu et al., arXiv 1709.01507).

    Written here because timm's and torchvision's SE blocks are 2D (they pool H, W only).
    Same computation as fvcore's ``SqueezeExcitation(is_3d=True)`` that PyTorchVideo uses.
    """

    def __init__(self, channels: int, reduced: int, activation: Callable[[], nn.Module] = nn.ReLU):
        super().__init__()
        self.reduce = nn.Conv3d(channels, reduced, kernel_size=1, bias=True)
        self.act = activation()
        self.expand = nn.Conv3d(reduced, channels, kernel_size=1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> same shape, each channel scaled by a gate in (0, 1)."""
        s = x.mean(dim=(2, 3, 4), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


def _make_norm(norm: Callable[..., nn.Module] | None, channels: int, eps: float, momentum: float):
    return (
        nn.Identity() if norm is None else norm(num_features=channels, eps=eps, momentum=momentum)
    )


def _make_act(activation: Callable[[], nn.Module] | None) -> nn.Module:
    return nn.Identity() if activation is None else activation()


class X3DStem(nn.Module):
    """Spatial conv 1xkxk, then depthwise temporal conv kx1x1, then norm and activation.

    (B, 3, T, H, W) -> (B, C, T / stride_t, H / 2, W / 2).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] = (5, 3, 3),
        stride: Sequence[int] = (1, 2, 2),
        norm: Callable[..., nn.Module] | None = nn.BatchNorm3d,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        activation: Callable[[], nn.Module] | None = nn.ReLU,
    ):
        super().__init__()
        kt, kh, kw = kernel_size
        self.conv_xy = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size=(1, kh, kw),
            stride=(1, stride[1], stride[2]),
            padding=(0, kh // 2, kw // 2),
            bias=False,
        )
        self.conv_t = nn.Conv3d(
            out_channels,
            out_channels,
            kernel_size=(kt, 1, 1),
            stride=(stride[0], 1, 1),
            padding=(kt // 2, 0, 0),
            groups=out_channels,
            bias=False,
        )
        self.norm = _make_norm(norm, out_channels, norm_eps, norm_momentum)
        self.act = _make_act(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv_t(self.conv_xy(x))))


class X3DBlock(nn.Module):
    """Residual bottleneck: 1x1x1 -> dw kxkxk (+SE) -> 1x1x1, summed with the shortcut.

    The shortcut is a strided 1x1x1 conv when the shape changes. As in PyTorchVideo, it is
    followed by a norm only when the channel count changes (so res2's first block, 24 -> 24
    channels at stride 2, has a conv shortcut without norm), and that norm uses the norm's
    default eps/momentum.
    """

    def __init__(
        self,
        *,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        conv_kernel_size: Sequence[int] = (3, 3, 3),
        conv_stride: Sequence[int] = (1, 2, 2),
        norm: Callable[..., nn.Module] | None = nn.BatchNorm3d,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        se_ratio: float = 0.0625,
        activation: Callable[[], nn.Module] | None = nn.ReLU,
        inner_act: Callable[[], nn.Module] | None = nn.SiLU,
    ):
        super().__init__()
        strided = math.prod(conv_stride) > 1
        self.shortcut_conv = (
            nn.Conv3d(dim_in, dim_out, kernel_size=1, stride=tuple(conv_stride), bias=False)
            if dim_in != dim_out or strided
            else None
        )
        self.shortcut_norm = (
            norm(num_features=dim_out) if norm is not None and dim_in != dim_out else None
        )
        self.conv_a = nn.Conv3d(dim_in, dim_inner, kernel_size=1, bias=False)
        self.norm_a = _make_norm(norm, dim_inner, norm_eps, norm_momentum)
        self.act_a = _make_act(activation)
        self.conv_b = nn.Conv3d(
            dim_inner,
            dim_inner,
            kernel_size=tuple(conv_kernel_size),
            stride=tuple(conv_stride),
            padding=tuple(k // 2 for k in conv_kernel_size),
            groups=dim_inner,
            bias=False,
        )
        self.norm_b = _make_norm(norm, dim_inner, norm_eps, norm_momentum)
        self.se = (
            SqueezeExcite3d(dim_inner, round_width(dim_inner, se_ratio))
            if se_ratio > 0
            else nn.Identity()
        )
        self.act_b = _make_act(inner_act)
        self.conv_c = nn.Conv3d(dim_inner, dim_out, kernel_size=1, bias=False)
        self.norm_c = _make_norm(norm, dim_out, norm_eps, norm_momentum)
        self.act = _make_act(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, dim_in, T, H, W) -> (B, dim_out, T / st, H / s, W / s)."""
        shortcut = x
        if self.shortcut_conv is not None:
            shortcut = self.shortcut_conv(shortcut)
            if self.shortcut_norm is not None:
                shortcut = self.shortcut_norm(shortcut)
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.se(self.norm_b(self.conv_b(x))))
        x = self.norm_c(self.conv_c(x))
        return self.act(shortcut + x)


class X3DHead(nn.Module):
    """Projected pooling head: 1x1x1 conv, norm, act, avg pool, 1x1x1 conv, act, dropout, fc.

    ``pool_kernel_size=None`` pools globally. With a fixed kernel (PyTorchVideo's default, set
    from the training clip size) a larger test clip yields a grid of predictions that
    ``output_pool`` averages ("fully convolutional" testing).
    """

    def __init__(
        self,
        *,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        num_classes: int,
        pool_kernel_size: Sequence[int] | None,
        pool_act: Callable[[], nn.Module] | None = nn.ReLU,
        norm: Callable[..., nn.Module] = nn.BatchNorm3d,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        bn_lin5_on: bool = False,
        dropout_rate: float = 0.5,
        activation: Callable[..., nn.Module] | None = None,
        output_with_global_average: bool = True,
    ):
        super().__init__()
        self.pre_conv = nn.Conv3d(dim_in, dim_inner, kernel_size=1, bias=False)
        self.pre_norm = norm(num_features=dim_inner, eps=norm_eps, momentum=norm_momentum)
        self.pre_act = _make_act(pool_act)
        self.pool = (
            nn.AdaptiveAvgPool3d(1)
            if pool_kernel_size is None
            else nn.AvgPool3d(tuple(pool_kernel_size), stride=1)
        )
        self.post_conv = nn.Conv3d(dim_inner, dim_out, kernel_size=1, bias=False)
        self.post_norm = (
            norm(num_features=dim_out, eps=norm_eps, momentum=norm_momentum)
            if bn_lin5_on
            else nn.Identity()
        )
        self.post_act = _make_act(pool_act)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.proj = nn.Linear(dim_out, num_classes, bias=True)
        if activation is None:
            self.activation: nn.Module = nn.Identity()
        elif activation is nn.Softmax:
            self.activation = nn.Softmax(dim=1)
        else:
            self.activation = activation()
        self.output_pool = nn.AdaptiveAvgPool3d(1) if output_with_global_average else None

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C5, T, H, W) -> (B, dim_out, T', H', W') pooled features before the classifier."""
        x = self.pre_act(self.pre_norm(self.pre_conv(x)))
        x = self.pool(x)
        return self.post_act(self.post_norm(self.post_conv(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C5, T, H, W) -> (B, num_classes), or (B, num_classes, T', H', W') without
        ``output_with_global_average``."""
        x = self.dropout(self.pre_logits(x))
        # The classifier runs on every position of the pooled grid, channels last.
        x = self.proj(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
        x = self.activation(x)
        if self.output_pool is not None:
            x = self.output_pool(x).flatten(1)
        return x


class X3D(nn.Module):
    """X3D network: stem, four residual stages (res2..res5), projected-pooling head.

    Input (B, 3, T, H, W) float, normalised with the Kinetics mean/std
    ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225)); output (B, num_classes) logits.
    """

    def __init__(self, stem: X3DStem, stages: Sequence[nn.Sequential], head: X3DHead):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        self.head = head
        self.num_classes = head.proj.out_features
        self.num_features = head.pre_conv.in_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> res5 features (B, C5, T, H/32, W/32)."""
        return self.stages(self.stem(x))

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the stem and of each stage (strides 2, 4, 8, 16, 32)."""
        outs = [self.stem(x)]
        for stage in self.stages:
            outs.append(stage(outs[-1]))
        return outs

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def init_x3d_weights(
    model: nn.Module, fc_init_std: float = 0.01, zero_init_final_norm: bool = False
):
    """ResNet-style init as PyTorchVideo's ``init_net_weights``: Kaiming-normal (fan_out)
    convs, unit norms, N(0, 0.01) classifier. ``zero_init_final_norm`` zeroes the last norm
    of every residual branch (PySlowFast's ``RESNET.ZERO_INIT_FINAL_BN``)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._NormBase):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=fc_init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    if zero_init_final_norm:
        for m in model.modules():
            if isinstance(m, X3DBlock) and isinstance(m.norm_c, nn.modules.batchnorm._NormBase):
                nn.init.zeros_(m.norm_c.weight)


def create_x3d(
    *,
    # Input clip configs.
    input_channel: int = 3,
    input_clip_length: int = 13,
    input_crop_size: int = 160,
    # Model configs.
    model_num_class: int = 400,
    dropout_rate: float = 0.5,
    width_factor: float = 2.0,
    depth_factor: float = 2.2,
    # Normalization configs.
    norm: Callable[..., nn.Module] = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    # Activation configs.
    activation: Callable[[], nn.Module] = nn.ReLU,
    # Stem configs.
    stem_dim_in: int = 12,
    stem_conv_kernel_size: Sequence[int] = (5, 3, 3),
    stem_conv_stride: Sequence[int] = (1, 2, 2),
    # Stage configs.
    stage_conv_kernel_size: Sequence[Sequence[int]] = ((3, 3, 3),) * 4,
    stage_spatial_stride: Sequence[int] = (2, 2, 2, 2),
    stage_temporal_stride: Sequence[int] = (1, 1, 1, 1),
    bottleneck_factor: float = 2.25,
    se_ratio: float = 0.0625,
    inner_act: Callable[[], nn.Module] = nn.SiLU,
    # Head configs.
    head_dim_out: int = 2048,
    head_pool_act: Callable[[], nn.Module] = nn.ReLU,
    head_bn_lin5_on: bool = False,
    head_activation: Callable[..., nn.Module] | None = None,
    head_output_with_global_average: bool = True,
    zero_init_final_norm: bool = False,
) -> X3D:
    """Build an X3D network, with the keyword arguments of PyTorchVideo's ``create_x3d``.

    ``input_clip_length`` and ``input_crop_size`` size the head's pooling window (the network
    accepts larger clips and averages the grid of predictions); ``width_factor``,
    ``depth_factor`` and ``bottleneck_factor`` are the X3D expansion factors γw, γd, γb.
    ``norm`` is called as ``norm(num_features=, eps=, momentum=)``; ``activation``,
    ``inner_act`` (Swish in the paper) and ``head_pool_act`` are zero-argument callables.
    """
    stem_dim_out = round_width(stem_dim_in, width_factor)
    stem = X3DStem(
        in_channels=input_channel,
        out_channels=stem_dim_out,
        kernel_size=stem_conv_kernel_size,
        stride=stem_conv_stride,
        norm=norm,
        norm_eps=norm_eps,
        norm_momentum=norm_momentum,
        activation=activation,
    )

    # Base stage widths 12, 24, 48, 96 (x2 per stage), then scaled by the width factor.
    stage_depths = (1, 2, 5, 3)
    stage_dims = [stem_dim_in]
    for _ in range(3):
        stage_dims.append(round_width(stage_dims[-1], 2.0, divisor=8))

    stages = []
    dim_in = stem_dim_out
    for idx, base_depth in enumerate(stage_depths):
        dim_out = round_width(stage_dims[idx], width_factor)
        dim_inner = int(bottleneck_factor * dim_out)
        stride = (stage_temporal_stride[idx], stage_spatial_stride[idx], stage_spatial_stride[idx])
        blocks = [
            X3DBlock(
                dim_in=dim_in if i == 0 else dim_out,
                dim_inner=dim_inner,
                dim_out=dim_out,
                conv_kernel_size=stage_conv_kernel_size[idx],
                conv_stride=stride if i == 0 else (1, 1, 1),
                norm=norm,
                norm_eps=norm_eps,
                norm_momentum=norm_momentum,
                # SE on every other block, starting with the first.
                se_ratio=se_ratio if i % 2 == 0 else 0.0,
                activation=activation,
                inner_act=inner_act,
            )
            for i in range(round_repeats(base_depth, depth_factor))
        ]
        stages.append(nn.Sequential(*blocks))
        dim_in = dim_out

    total_spatial_stride = stem_conv_stride[1] * math.prod(stage_spatial_stride)
    total_temporal_stride = stem_conv_stride[0] * math.prod(stage_temporal_stride)
    if input_clip_length < total_temporal_stride or input_crop_size < total_spatial_stride:
        raise ValueError(
            f"input {input_clip_length}x{input_crop_size}² is smaller than the network's stride "
            f"{total_temporal_stride}x{total_spatial_stride}²; use a longer clip or larger crop"
        )
    pool_kernel = (
        input_clip_length // total_temporal_stride,
        math.ceil(input_crop_size / total_spatial_stride),
        math.ceil(input_crop_size / total_spatial_stride),
    )
    head = X3DHead(
        dim_in=dim_out,
        dim_inner=dim_inner,
        dim_out=head_dim_out,
        num_classes=model_num_class,
        pool_kernel_size=pool_kernel,
        pool_act=head_pool_act,
        norm=norm,
        norm_eps=norm_eps,
        norm_momentum=norm_momentum,
        bn_lin5_on=head_bn_lin5_on,
        dropout_rate=dropout_rate,
        activation=head_activation,
        output_with_global_average=head_output_with_global_average,
    )
    model = X3D(stem, stages, head)
    init_x3d_weights(model, zero_init_final_norm=zero_init_final_norm)
    return model


def _create_x3d(name: str, num_classes: int, **kwargs: Any) -> X3D:
    clip, crop = X3D_INPUT_SIZES[name]
    args: dict[str, Any] = {"input_clip_length": clip, "input_crop_size": crop}
    args.update(kwargs)
    return create_x3d(model_num_class=num_classes, **args)


def x3d_xs(num_classes: int = 400, **kwargs: Any) -> X3D:
    """X3D-XS: 4x160², depth factor 2.2; 3.79 M params, 0.60 GFLOPs (multiply-adds)."""
    return _create_x3d("x3d_xs", num_classes, **{"depth_factor": 2.2, **kwargs})


def x3d_s(num_classes: int = 400, **kwargs: Any) -> X3D:
    """X3D-S: 13x160², depth factor 2.2; 3.79 M params, 1.96 GFLOPs."""
    return _create_x3d("x3d_s", num_classes, **{"depth_factor": 2.2, **kwargs})


def x3d_m(num_classes: int = 400, **kwargs: Any) -> X3D:
    """X3D-M: 16x224², depth factor 2.2; 3.79 M params, 6.2 GFLOPs at the 256² test crop."""
    return _create_x3d("x3d_m", num_classes, **{"depth_factor": 2.2, **kwargs})


def x3d_l(num_classes: int = 400, **kwargs: Any) -> X3D:
    """X3D-L: 16x312², depth factor 5.0; 6.15 M params, 24.8 GFLOPs at the 356² test crop."""
    return _create_x3d("x3d_l", num_classes, **{"depth_factor": 5.0, **kwargs})
