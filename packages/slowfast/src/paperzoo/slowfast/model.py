"""SlowFast Networks for Video Recognition.

Paper: Christoph Feichtenhofer, Haoqi Fan, Jitendra Malik, Kaiming He, ICCV 2019,
arXiv 1812.03982. Official code: facebookresearch/SlowFast (PySlowFast,
``slowfast/models/video_model_builder.py``, ``resnet_helper.py``, ``head_helper.py``).
Built the way PyTorchVideo builds it (``pytorchvideo/models/slowfast.py``, ``resnet.py``,
``head.py``, ``hub/slowfast.py``): keyword-only builders, norm and activation as callables.

A SlowFast network runs two 3D ResNets on the same clip:

    Slow pathway  T/alpha frames,  C channels     temporal kernels 1,1,1,3,3 (conv1,res2..res5)
    Fast pathway  T frames,        C/beta channels temporal kernels 5,3,3,3,3

After conv1 and after res2, res3 and res4, a lateral connection carries the Fast features
to the Slow pathway: a time-strided convolution (kernel 7x1x1 for R50 8x8, 5x1x1 otherwise,
stride alpha, 2*C/beta output channels) -> BN -> ReLU, concatenated to the Slow features.
The head average-pools each pathway, concatenates them and classifies. The last BN of every
residual branch starts at zero, so each block starts as the identity.

Slow-only is the same network with one pathway and no lateral connections. The AVA detector
swaps the head for an RoI head: temporal average pool, RoIAlign on the res5 map (res5 without
spatial stride, dilation 2, so 1/16 of the input), spatial max pool, linear.

Module names are ours; :mod:`paperzoo.slowfast.convert` maps PyTorchVideo's keys
(``blocks.N...``) and PySlowFast's keys (``s1.pathway0_stem...``) onto them. Two choices
differ from the references by default and each is one argument away:
- the heads return logits (``head_activation=None``); PySlowFast applies softmax (sigmoid for
  AVA) in the forward pass at test time, PyTorchVideo's detector always applies sigmoid;
- ReLUs run in place (PySlowFast does too; PyTorchVideo does not), which saves memory traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

__all__ = [
    "Bottleneck",
    "FuseFastToSlow",
    "ResBlock",
    "ResNetBasicHead",
    "ResNetRoIHead",
    "ResNetStem",
    "SlowFast",
    "create_slow",
    "create_slowfast",
    "init_resnet_weights",
    "pack_pathways",
    "slow_r50",
    "slow_r50_detection",
    "slow_tiny",
    "slowfast_4x16_r50",
    "slowfast_8x8_r101_50_50",
    "slowfast_16x8_r101_50_50",
    "slowfast_r50",
    "slowfast_r50_detection",
    "slowfast_r101",
    "slowfast_tiny",
]

STAGE_DEPTHS: dict[int, tuple[int, int, int, int]] = {
    18: (1, 1, 1, 1),  # block counts only; SlowFast always uses bottlenecks (as PyTorchVideo)
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}

Norm = Callable[[int], nn.Module]
Activation = Callable[[], nn.Module]
ReLU = partial(nn.ReLU, inplace=True)


def pack_pathways(frames: torch.Tensor, alpha: int) -> list[torch.Tensor]:
    """Split a clip into the SlowFast inputs ``[slow, fast]``.

    ``frames`` is (B, C, T, H, W) or (C, T, H, W) at the Fast rate; the Slow input takes
    ``T // alpha`` frames evenly spaced over the clip (PySlowFast's ``PackPathway``:
    ``linspace(0, T - 1, T // alpha)``), the Fast input is ``frames`` itself.
    """
    if frames.dim() not in (4, 5):
        raise ValueError(
            f"expected (B, C, T, H, W) or (C, T, H, W) frames, got {tuple(frames.shape)}"
        )
    time_dim = frames.dim() - 3
    num_frames = frames.shape[time_dim]
    if num_frames < alpha:
        raise ValueError(f"a clip of {num_frames} frames is too short for alpha={alpha}")
    index = torch.linspace(0, num_frames - 1, num_frames // alpha, device=frames.device).long()
    return [frames.index_select(time_dim, index), frames]


# -- blocks --------------------------------------------------------------------------------------


class ResNetStem(nn.Module):
    """conv (T x 7 x 7, stride 1,2,2) -> norm -> act -> max pool (1x3x3, stride 1,2,2).

    (B, C_in, T, H, W) -> (B, C_out, T, H/4, W/4).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        temporal_kernel: int,
        norm: Norm = nn.BatchNorm3d,
        activation: Activation = ReLU,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size=(temporal_kernel, 7, 7),
            stride=(1, 2, 2),
            padding=(temporal_kernel // 2, 3, 3),
            bias=False,
        )
        self.norm = norm(out_channels)
        self.act = activation()
        self.pool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.norm(self.conv(x))))


class Bottleneck(nn.Module):
    """The residual branch: T x 1 x 1 -> 1 x 3 x 3 (spatial stride here) -> 1 x 1 x 1.

    Each conv is followed by norm; the first two also by the activation. ``norm_c`` carries
    ``final_norm = True`` so that :func:`init_resnet_weights` can zero it.
    """

    def __init__(
        self,
        *,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        temporal_kernel: int,
        spatial_stride: int = 1,
        dilation: int = 1,
        num_groups: int = 1,
        norm: Norm = nn.BatchNorm3d,
        activation: Activation = ReLU,
    ) -> None:
        super().__init__()
        self.conv_a = nn.Conv3d(
            dim_in,
            dim_inner,
            kernel_size=(temporal_kernel, 1, 1),
            padding=(temporal_kernel // 2, 0, 0),
            bias=False,
        )
        self.norm_a = norm(dim_inner)
        self.act_a = activation()
        self.conv_b = nn.Conv3d(
            dim_inner,
            dim_inner,
            kernel_size=(1, 3, 3),
            stride=(1, spatial_stride, spatial_stride),
            padding=(0, dilation, dilation),
            dilation=(1, dilation, dilation),
            groups=num_groups,
            bias=False,
        )
        self.norm_b = norm(dim_inner)
        self.act_b = activation()
        self.conv_c = nn.Conv3d(dim_inner, dim_out, kernel_size=1, bias=False)
        self.norm_c = norm(dim_out)
        self.norm_c.final_norm = True  # zero-initialised: the block starts as the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class _Projection(nn.Module):
    """Shortcut projection when the shape changes: 1x1x1 conv (spatial stride) -> norm."""

    def __init__(self, dim_in: int, dim_out: int, spatial_stride: int, norm: Norm) -> None:
        super().__init__()
        self.conv = nn.Conv3d(
            dim_in, dim_out, kernel_size=1, stride=(1, spatial_stride, spatial_stride), bias=False
        )
        self.norm = norm(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class ResBlock(nn.Module):
    """``act(shortcut(x) + residual(x))``; the shortcut projects only when the shape changes."""

    def __init__(
        self,
        *,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        temporal_kernel: int,
        spatial_stride: int = 1,
        dilation: int = 1,
        num_groups: int = 1,
        norm: Norm = nn.BatchNorm3d,
        activation: Activation = ReLU,
        bottleneck: Callable[..., nn.Module] = Bottleneck,
    ) -> None:
        super().__init__()
        self.shortcut = (
            _Projection(dim_in, dim_out, spatial_stride, norm)
            if dim_in != dim_out or spatial_stride != 1
            else None
        )
        self.residual = bottleneck(
            dim_in=dim_in,
            dim_inner=dim_inner,
            dim_out=dim_out,
            temporal_kernel=temporal_kernel,
            spatial_stride=spatial_stride,
            dilation=dilation,
            num_groups=num_groups,
            norm=norm,
            activation=activation,
        )
        self.act = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        # The branch output is a fresh tensor that nothing saves for backward, so it can take
        # the sum in place (one allocation fewer per block).
        out = self.residual(x)
        out += shortcut
        return self.act(out)


class FuseFastToSlow(nn.Module):
    """Lateral connection: time-strided conv of the Fast features, concatenated to the Slow.

    ``[slow (B, Cs, T/a, H, W), fast (B, Cf, T, H, W)]`` ->
    ``[(B, Cs + ratio * Cf, T/a, H, W), fast]``. Conv kernel (k, 1, 1), stride (alpha, 1, 1),
    padding k // 2, then norm and activation (PySlowFast ``FuseFastToSlow``).
    """

    def __init__(
        self,
        *,
        dim_in: int,
        channel_ratio: int,
        kernel_size: int,
        alpha: int,
        norm: Norm = nn.BatchNorm3d,
        activation: Activation = ReLU,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(
            dim_in,
            dim_in * channel_ratio,
            kernel_size=(kernel_size, 1, 1),
            stride=(alpha, 1, 1),
            padding=(kernel_size // 2, 0, 0),
            bias=False,
        )
        self.norm = norm(dim_in * channel_ratio)
        self.act = activation()

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        slow, fast = x
        lateral = self.act(self.norm(self.conv(fast)))
        if lateral.shape[2] != slow.shape[2]:
            raise ValueError(
                f"the Fast pathway has {fast.shape[2]} frames and the Slow pathway "
                f"{slow.shape[2]}: the Fast clip must have alpha={self.conv.stride[0]} times "
                "the Slow clip's frames (use pack_pathways)"
            )
        return [torch.cat([slow, lateral], dim=1), fast]


class ResNetBasicHead(nn.Module):
    """Classification head: per-pathway average pool -> concat -> dropout -> linear.

    With ``pool_kernel_sizes`` (one (t, h, w) per pathway, stride 1) the pooled maps are
    classified at every remaining position and the logits averaged: fully convolutional
    testing on larger crops, as in both references. ``None`` pools each pathway globally.
    ``activation`` (e.g. ``partial(nn.Softmax, dim=1)``) is applied per position before the
    average, as PySlowFast does at test time. Input: list of (B, C_p, T_p, H, W); output
    (B, num_classes).
    """

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        pool_kernel_sizes: Sequence[Sequence[int]] | None,
        num_pathways: int,
        dropout_rate: float = 0.5,
        activation: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if pool_kernel_sizes is None:
            self.pools = nn.ModuleList(nn.AdaptiveAvgPool3d(1) for _ in range(num_pathways))
        else:
            if len(pool_kernel_sizes) != num_pathways:
                raise ValueError(
                    f"head_pool_kernel_sizes needs one (t, h, w) per pathway ({num_pathways}), "
                    f"got {pool_kernel_sizes}"
                )
            self.pools = nn.ModuleList(nn.AvgPool3d(tuple(k), stride=1) for k in pool_kernel_sizes)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.proj = nn.Linear(in_features, num_classes)
        self.act = activation() if activation is not None else None

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        pooled = torch.cat([pool(t) for pool, t in zip(self.pools, x)], dim=1)
        if self.act is None:
            # The projection is linear, so averaging before it equals averaging the logits
            # of every position, at a fraction of the cost.
            return self.proj(self.dropout(pooled.mean(dim=(2, 3, 4))))
        logits = self.proj(self.dropout(pooled.permute(0, 2, 3, 4, 1)))
        return self.act(logits.movedim(-1, 1)).mean(dim=(2, 3, 4))


class ResNetRoIHead(nn.Module):
    """AVA detection head: temporal mean -> RoIAlign -> spatial max -> dropout -> linear.

    Inputs: list of (B, C_p, T_p, H, W) and ``boxes`` (K, 5) float rows ``(batch_index, x1,
    y1, x2, y2)`` in input-pixel coordinates; output (K, num_classes). Each pathway is averaged
    over time, the pathways are concatenated, RoIAligned (``torchvision.ops.roi_align``) to
    ``resolution`` at ``spatial_scale`` (1/16 for res5 without its stride) and max-pooled over
    the RoI (PySlowFast ``ResNetRoIHead``). ``aligned=True`` is PySlowFast's default
    (detectron2 ``ROIAlign(aligned=True)``); PyTorchVideo's builder uses torchvision's
    default, ``aligned=False``.
    """

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        resolution: tuple[int, int] = (7, 7),
        spatial_scale: float = 1.0 / 16.0,
        sampling_ratio: int = 0,
        aligned: bool = True,
        dropout_rate: float = 0.5,
        activation: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.resolution = tuple(resolution)
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.proj = nn.Linear(in_features, num_classes)
        self.act = activation() if activation is not None else None

    def forward(self, x: list[torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import roi_align

        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(
                f"boxes must be (K, 5) rows (batch_index, x1, y1, x2, y2), got {tuple(boxes.shape)}"
            )
        feats = torch.cat([t.mean(dim=2) for t in x], dim=1)
        rois = roi_align(
            feats,
            boxes.to(feats.dtype),
            output_size=self.resolution,
            spatial_scale=self.spatial_scale,
            sampling_ratio=self.sampling_ratio,
            aligned=self.aligned,
        )
        out = self.proj(self.dropout(rois.amax(dim=(2, 3))))
        return self.act(out) if self.act is not None else out


# -- the network ---------------------------------------------------------------------------------


class SlowFast(nn.Module):
    """A multi-pathway 3D ResNet: SlowFast (two pathways) or Slow-only (one).

    Args:
        stem: one :class:`ResNetStem` per pathway.
        stages: one ``nn.ModuleList`` per stage (res2..res5) holding one ``nn.Sequential`` of
            :class:`ResBlock` per pathway.
        fusions: lateral connections applied after the stem and after each stage but the
            last (empty for Slow-only).
        head: :class:`ResNetBasicHead`, :class:`ResNetRoIHead`, or ``None`` (features only).
        alpha: Slow/Fast frame-rate ratio, used to split a single clip into pathways. A
            Slow-only network with ``alpha > 1`` keeps the Slow frames of a Fast-rate clip.

    ``forward(x)`` takes a list of per-pathway clips (B, 3, T_p, H, W) (Slow first), or one
    Fast-rate clip, which is split with :func:`pack_pathways`. The detector also takes
    ``boxes`` (K, 5).
    """

    def __init__(
        self,
        *,
        stem: Sequence[nn.Module],
        stages: Sequence[Sequence[nn.Module]],
        fusions: Sequence[nn.Module] = (),
        head: nn.Module | None,
        alpha: int = 4,
    ) -> None:
        super().__init__()
        self.num_pathways = len(stem)
        if self.num_pathways == 2 and len(fusions) != len(stages):
            raise ValueError(f"need one fusion per stage input ({len(stages)}), got {len(fusions)}")
        self.alpha = alpha
        self.stem = nn.ModuleList(stem)
        self.fusions = nn.ModuleList(fusions)
        self.stages = nn.ModuleList(nn.ModuleList(s) for s in stages)
        self.head = head

    def _split(self, x: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if isinstance(x, torch.Tensor):
            if self.num_pathways == 2:
                return pack_pathways(x, self.alpha)
            return [x] if self.alpha == 1 else pack_pathways(x, self.alpha)[:1]
        x = list(x)
        if len(x) != self.num_pathways:
            raise ValueError(f"expected {self.num_pathways} pathway inputs, got {len(x)}")
        return x

    def forward_features(self, x: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per-pathway res5 feature maps, [(B, C_p, T_p, H/32, W/32), ...]."""
        x = self._split(x)
        x = [stem(t) for stem, t in zip(self.stem, x)]
        for i, stage in enumerate(self.stages):
            if self.fusions:
                x = self.fusions[i](x)
            x = [blocks(t) for blocks, t in zip(stage, x)]
        return x

    def forward_head(
        self, features: list[torch.Tensor], boxes: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError("this model was built with head=None; use forward_features")
        if isinstance(self.head, ResNetRoIHead):
            if boxes is None:
                raise ValueError("the detection head needs boxes: model(clips, boxes)")
            return self.head(features, boxes)
        return self.head(features)

    def forward(
        self, x: torch.Tensor | Sequence[torch.Tensor], boxes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (B, num_classes), or (K, num_classes) for the detector with ``boxes``."""
        return self.forward_head(self.forward_features(x), boxes)


def init_resnet_weights(
    model: nn.Module, fc_init_std: float = 0.01, zero_init_final_norm: bool = True
) -> None:
    """PySlowFast's ``init_weights`` (and PyTorchVideo's ``init_net_weights``): convs
    kaiming-normal (fan_out, ReLU gain; Caffe2's MSRA fill), norms 1/0 with each residual
    branch's last norm at 0, linears N(0, fc_init_std) with zero bias."""
    if any(p.is_meta for p in model.parameters()):
        # Structure-only models (parameter counts, FLOPs) have no values to fill, and random
        # fills on meta tensors import torch._dynamo (tens of seconds without bytecode caches).
        return
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._NormBase):
            if m.weight is not None:
                zero = zero_init_final_norm and getattr(m, "final_norm", False)
                nn.init.constant_(m.weight, 0.0 if zero else 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=fc_init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# -- builders ------------------------------------------------------------------------------------


def _per_block(kernels: int | Sequence[int], depth: int, where: str) -> list[int]:
    if isinstance(kernels, int):
        return [kernels] * depth
    kernels = list(kernels)
    if len(kernels) != depth:
        raise ValueError(f"{where}: need one temporal kernel per block ({depth}), got {kernels}")
    return kernels


def _make_stage(
    *,
    depth: int,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    temporal_kernels: int | Sequence[int],
    spatial_stride: int,
    dilation: int,
    num_groups: int,
    norm: Norm,
    activation: Activation,
    where: str,
) -> nn.Sequential:
    kernels = _per_block(temporal_kernels, depth, where)
    return nn.Sequential(
        *(
            ResBlock(
                dim_in=dim_in if i == 0 else dim_out,
                dim_inner=dim_inner,
                dim_out=dim_out,
                temporal_kernel=kernels[i],
                spatial_stride=spatial_stride if i == 0 else 1,
                dilation=dilation,
                num_groups=num_groups,
                norm=norm,
                activation=activation,
            )
            for i in range(depth)
        )
    )


def _make_head(
    *,
    head: str | None,
    in_features: int,
    num_classes: int,
    num_pathways: int,
    dropout_rate: float,
    head_pool_kernel_sizes: Sequence[Sequence[int]] | None,
    head_activation: Callable[[], nn.Module] | None,
    roi_resolution: tuple[int, int],
    roi_spatial_scale: float,
    roi_aligned: bool,
) -> nn.Module | None:
    if head is None:
        return None
    if head == "basic":
        return ResNetBasicHead(
            in_features=in_features,
            num_classes=num_classes,
            pool_kernel_sizes=head_pool_kernel_sizes,
            num_pathways=num_pathways,
            dropout_rate=dropout_rate,
            activation=head_activation,
        )
    if head == "roi":
        return ResNetRoIHead(
            in_features=in_features,
            num_classes=num_classes,
            resolution=roi_resolution,
            spatial_scale=roi_spatial_scale,
            aligned=roi_aligned,
            dropout_rate=dropout_rate,
            activation=head_activation,
        )
    raise ValueError(f"head must be 'basic', 'roi' or None, got {head!r}")


def create_slowfast(
    *,
    # SlowFast: frame-rate ratio, inverse channel ratio, lateral connections.
    alpha: int = 4,
    beta_inv: int = 8,
    fusion_channel_ratio: int = 2,
    fusion_kernel_size: int = 7,
    # Input and output.
    input_channels: int = 3,
    num_classes: int = 400,
    dropout_rate: float = 0.5,
    # Backbone.
    depth: int = 50,
    stage_depths: Sequence[int] | None = None,
    width: int = 64,
    num_groups: int = 1,
    norm: Norm = nn.BatchNorm3d,
    activation: Activation = ReLU,
    # Stem (conv1) temporal kernels, (slow, fast).
    stem_temporal_kernels: tuple[int, int] = (1, 5),
    # Stages res2..res5: temporal kernel of each block's first conv, per pathway per stage
    # (an int for every block of the stage or one per block), spatial strides and dilations.
    stage_temporal_kernels: Sequence[Sequence[int | Sequence[int]]] = (
        (1, 1, 3, 3),
        (3, 3, 3, 3),
    ),
    stage_spatial_strides: Sequence[int] = (1, 2, 2, 2),
    stage_dilations: Sequence[int] = (1, 1, 1, 1),
    # Head.
    head: str | None = "basic",
    head_pool_kernel_sizes: Sequence[Sequence[int]] | None = ((8, 7, 7), (32, 7, 7)),
    head_activation: Callable[[], nn.Module] | None = None,
    roi_resolution: tuple[int, int] = (7, 7),
    roi_spatial_scale: float = 1.0 / 16.0,
    roi_aligned: bool = True,
    zero_init_final_norm: bool = True,
) -> SlowFast:
    """Build a SlowFast network (defaults: SlowFast R50 8x8, 400 classes, 224² training crop).

    Channels: the Slow pathway has ``width`` stem channels and ``width * 4 * 2**s`` at stage
    ``s``; the Fast pathway has ``1 / beta_inv`` of them. ``head_pool_kernel_sizes`` is the
    per-pathway (t, h, w) pooling window of the trained input (8 and 32 frames, 224 / 32 = 7);
    ``None`` pools globally, for any input size. ``head="roi"`` builds the AVA detector.
    """
    stage_depths = tuple(stage_depths) if stage_depths is not None else STAGE_DEPTHS[depth]
    if width % beta_inv:
        raise ValueError(f"width={width} must be divisible by beta_inv={beta_inv}")
    fast = width // beta_inv
    stem = [
        ResNetStem(
            in_channels=input_channels,
            out_channels=dim,
            temporal_kernel=k,
            norm=norm,
            activation=activation,
        )
        for dim, k in zip((width, fast), stem_temporal_kernels)
    ]

    def fuse(fast_dim: int) -> FuseFastToSlow:
        return FuseFastToSlow(
            dim_in=fast_dim,
            channel_ratio=fusion_channel_ratio,
            kernel_size=fusion_kernel_size,
            alpha=alpha,
            norm=norm,
            activation=activation,
        )

    fusions = [fuse(fast)]
    stages = []
    dim_in, dim_out = width, width * 4
    for s, depth_s in enumerate(stage_depths):
        fast_in = dim_in // beta_inv
        pathway_dims = [
            (dim_in + fast_in * fusion_channel_ratio, dim_out // 4, dim_out),
            (fast_in, dim_out // 4 // beta_inv, dim_out // beta_inv),
        ]
        stages.append(
            [
                _make_stage(
                    depth=depth_s,
                    dim_in=p_in,
                    dim_inner=p_inner,
                    dim_out=p_out,
                    temporal_kernels=stage_temporal_kernels[p][s],
                    spatial_stride=stage_spatial_strides[s],
                    dilation=stage_dilations[s],
                    num_groups=num_groups,
                    norm=norm,
                    activation=activation,
                    where=f"stage_temporal_kernels[{p}][{s}]",
                )
                for p, (p_in, p_inner, p_out) in enumerate(pathway_dims)
            ]
        )
        if s < len(stage_depths) - 1:
            fusions.append(fuse(dim_out // beta_inv))
        dim_in, dim_out = dim_out, dim_out * 2
    model = SlowFast(
        stem=stem,
        stages=stages,
        fusions=fusions,
        head=_make_head(
            head=head,
            in_features=dim_in + dim_in // beta_inv,
            num_classes=num_classes,
            num_pathways=2,
            dropout_rate=dropout_rate,
            head_pool_kernel_sizes=head_pool_kernel_sizes,
            head_activation=head_activation,
            roi_resolution=roi_resolution,
            roi_spatial_scale=roi_spatial_scale,
            roi_aligned=roi_aligned,
        ),
        alpha=alpha,
    )
    init_resnet_weights(model, zero_init_final_norm=zero_init_final_norm)
    return model


def create_slow(
    *,
    input_channels: int = 3,
    num_classes: int = 400,
    dropout_rate: float = 0.5,
    depth: int = 50,
    stage_depths: Sequence[int] | None = None,
    width: int = 64,
    num_groups: int = 1,
    norm: Norm = nn.BatchNorm3d,
    activation: Activation = ReLU,
    stem_temporal_kernel: int = 1,
    stage_temporal_kernels: Sequence[int | Sequence[int]] = (1, 1, 3, 3),
    stage_spatial_strides: Sequence[int] = (1, 2, 2, 2),
    stage_dilations: Sequence[int] = (1, 1, 1, 1),
    head: str | None = "basic",
    head_pool_kernel_size: Sequence[int] | None = (8, 7, 7),
    head_activation: Callable[[], nn.Module] | None = None,
    roi_resolution: tuple[int, int] = (7, 7),
    roi_spatial_scale: float = 1.0 / 16.0,
    roi_aligned: bool = True,
    zero_init_final_norm: bool = True,
    alpha: int = 1,
) -> SlowFast:
    """Build the Slow-only baseline: the Slow pathway alone (defaults: Slow R50 8x8).

    With ``alpha > 1`` the network takes a Fast-rate clip and keeps every ``alpha``-th frame
    (the frames a SlowFast network's Slow pathway sees); with 1 it takes the clip as is.
    """
    stage_depths = tuple(stage_depths) if stage_depths is not None else STAGE_DEPTHS[depth]
    stem = [
        ResNetStem(
            in_channels=input_channels,
            out_channels=width,
            temporal_kernel=stem_temporal_kernel,
            norm=norm,
            activation=activation,
        )
    ]
    stages = []
    dim_in, dim_out = width, width * 4
    for s, depth_s in enumerate(stage_depths):
        stages.append(
            [
                _make_stage(
                    depth=depth_s,
                    dim_in=dim_in,
                    dim_inner=dim_out // 4,
                    dim_out=dim_out,
                    temporal_kernels=stage_temporal_kernels[s],
                    spatial_stride=stage_spatial_strides[s],
                    dilation=stage_dilations[s],
                    num_groups=num_groups,
                    norm=norm,
                    activation=activation,
                    where=f"stage_temporal_kernels[{s}]",
                )
            ]
        )
        dim_in, dim_out = dim_out, dim_out * 2
    model = SlowFast(
        stem=stem,
        stages=stages,
        head=_make_head(
            head=head,
            in_features=dim_in,
            num_classes=num_classes,
            num_pathways=1,
            dropout_rate=dropout_rate,
            head_pool_kernel_sizes=None
            if head_pool_kernel_size is None
            else [head_pool_kernel_size],
            head_activation=head_activation,
            roi_resolution=roi_resolution,
            roi_spatial_scale=roi_spatial_scale,
            roi_aligned=roi_aligned,
        ),
        alpha=alpha,
    )
    init_resnet_weights(model, zero_init_final_norm=zero_init_final_norm)
    return model


# -- named sizes (PyTorchVideo hub names; PySlowFast configs in comments) ------------------------

# res2..res5 spatial stride 1, 2, 2, 1 and dilation 2 in res5: the AVA detectors' res5 map is
# 1/16 of the input (configs/AVA/*.yaml SPATIAL_STRIDES / SPATIAL_DILATIONS).
_DETECTION = dict(
    stage_spatial_strides=(1, 2, 2, 1), stage_dilations=(1, 1, 1, 2), head="roi", num_classes=80
)


def slowfast_r50(**kwargs: Any) -> SlowFast:
    """SlowFast R50 8x8 (configs/Kinetics/SLOWFAST_8x8_R50.yaml): alpha 4, fusion kernel 7;
    34,566,488 parameters, 65.7 GFLOPs (multiply-adds) per 32x256² view. K400 77.0 top-1."""
    return create_slowfast(**{"fusion_kernel_size": 7, **kwargs})


def slowfast_4x16_r50(**kwargs: Any) -> SlowFast:
    """SlowFast R50 4x16 (configs/Kinetics/SLOWFAST_4x16_R50.yaml): 4 Slow / 32 Fast frames,
    alpha 8, fusion kernel 5. K400 75.6 top-1, 36.1 GFLOPs per view."""
    defaults = dict(alpha=8, fusion_kernel_size=5, head_pool_kernel_sizes=((4, 7, 7), (32, 7, 7)))
    return create_slowfast(**{**defaults, **kwargs})


def slowfast_r101(**kwargs: Any) -> SlowFast:
    """SlowFast R101 8x8 as PyTorchVideo's hub ``slowfast_r101`` (PySlowFast
    configs/Kinetics/c2/SLOWFAST_8x8_R101_101_101.yaml): every res4 block temporal, fusion
    kernel 5; 62,826,968 parameters, 125.9 GFLOPs per 32x256² view."""
    return create_slowfast(**{"depth": 101, "fusion_kernel_size": 5, **kwargs})


# "R101_50_50": an R101 whose temporal kernels sit where R50 has them: only the first 6 of
# the 23 res4 blocks are 3x1x1 (NUM_BLOCK_TEMP_KERNEL [[3,3],[4,4],[6,6],[3,3]]).
_RES4_50_50 = (3,) * 6 + (1,) * 17
_R101_50_50 = dict(
    depth=101,
    fusion_kernel_size=5,
    stage_temporal_kernels=((1, 1, _RES4_50_50, 3), (3, 3, _RES4_50_50, 3)),
)


def slowfast_8x8_r101_50_50(**kwargs: Any) -> SlowFast:
    """SlowFast R101 8x8 of the paper's Table 2 (77.9 top-1, 106 GFLOPs; PySlowFast
    configs/Kinetics/c2/SLOWFAST_8x8_R101_50_50.yaml)."""
    return create_slowfast(**{**_R101_50_50, **kwargs})


def slowfast_16x8_r101_50_50(**kwargs: Any) -> SlowFast:
    """SlowFast R101 16x8 (PySlowFast configs/Kinetics/c2/SLOWFAST_16x8_R101_50_50.yaml;
    PyTorchVideo hub ``slowfast_16x8_r101_50_50``): 16 Slow / 64 Fast frames. 78.9 top-1,
    213 GFLOPs per view in the paper's Table 2."""
    defaults = dict(_R101_50_50, head_pool_kernel_sizes=((16, 7, 7), (64, 7, 7)))
    return create_slowfast(**{**defaults, **kwargs})


def slowfast_r50_detection(**kwargs: Any) -> SlowFast:
    """SlowFast R50 8x8 AVA detector (PyTorchVideo ``slowfast_r50_detection``): RoI head on a
    stride-16 res5, 80 classes."""
    return create_slowfast(**{"fusion_kernel_size": 7, **_DETECTION, **kwargs})


def slow_r50(**kwargs: Any) -> SlowFast:
    """Slow-only R50 8x8 (configs/Kinetics/SLOW_8x8_R50.yaml); 32,454,096 parameters."""
    return create_slow(**kwargs)


def slow_r50_detection(**kwargs: Any) -> SlowFast:
    """Slow-only R50 AVA detector (PyTorchVideo ``slow_r50_detection``)."""
    return create_slow(**{**_DETECTION, **kwargs})


# Small same-width pair for the CPU claim (paperzoo.slowfast.recipes): one bottleneck per
# stage, 8 Slow stem channels, beta_inv 4 (2 Fast channels), global head pooling.
_TINY = dict(stage_depths=(1, 1, 1, 1), width=8, head_pool_kernel_sizes=None, dropout_rate=0.0)


def slowfast_tiny(**kwargs: Any) -> SlowFast:
    """A small SlowFast for CPU experiments: R50 topology with one block per stage, width 8,
    beta_inv 4, alpha 4, fusion kernel 5; any input size."""
    defaults = dict(_TINY, beta_inv=4, fusion_kernel_size=5)
    return create_slowfast(**{**defaults, **kwargs})


def slow_tiny(**kwargs: Any) -> SlowFast:
    """The Slow pathway of :func:`slowfast_tiny` alone, at the same widths; it takes the same
    Fast-rate clip and keeps the Slow pathway's frames (alpha 4)."""
    defaults = {k: v for k, v in _TINY.items() if k != "head_pool_kernel_sizes"}
    return create_slow(**{**defaults, "head_pool_kernel_size": None, "alpha": 4, **kwargs})
