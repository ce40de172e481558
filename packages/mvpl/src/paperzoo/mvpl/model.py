"""One video model shared across views, for MvPL.

Xiong, Fan, Grauman, Feichtenhofer, "Multiview Pseudo-Labeling for Semi-supervised Learning
from Video", ICCV 2021 (arXiv 2104.00682). No official code was released.

The paper trains "a model that is shared across appearance and motion input" and so costs
nothing extra at inference (abstract). The views differ in channels (RGB 3, temporal gradient
3, flow 2), so something has to be view-specific at the input. Here it is the stem only (the
first conv, its norm and activation, and for Slow-only the stem max-pool): one stem per view,
everything after it (res2..res5 and the head) shared. At inference the RGB stem is used and
the network is exactly the backbone (same parameters, same FLOPs). That split is our reading
of "shared"; the paper's own choice could not be read from this machine (see the README's
Sources).

- :class:`MultiviewNet`: a backbone whose stem is replaced by one stem per view;
  ``forward(x, view="rgb")``.
- Builders: :func:`mvpl_slow_r50` (paperzoo-slowfast's Slow-only R50 8x8, the paper's
  backbone), :func:`mvpl_r3d_18` (torchvision's R3D-18) and :func:`mvpl_r3d_tiny` (a narrow
  R3D from torchvision's VideoResNet pieces, for the CPU study).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "VIEW_CHANNELS",
    "MultiviewNet",
    "mvpl_r3d_18",
    "mvpl_r3d_tiny",
    "mvpl_slow_r50",
    "narrow_r3d",
]

# Input channels of each view: RGB, temporal gradient (RGB frame differences), flow (x, y).
VIEW_CHANNELS: dict[str, int] = {"rgb": 3, "tg": 3, "flow": 2}


def _check_views(views: Sequence[str]) -> tuple[str, ...]:
    views = tuple(views)
    unknown = [v for v in views if v not in VIEW_CHANNELS]
    if unknown or not views or views[0] != "rgb" or len(set(views)) != len(views):
        raise ValueError(
            f"views must be distinct names from {tuple(VIEW_CHANNELS)} starting with 'rgb' (the "
            f"inference view), got {views}"
        )
    return views


class _ViewStems(nn.Module):
    """Stands where the backbone's stem was: runs the stem of the active view."""

    def __init__(self, stems: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.stems = nn.ModuleDict(stems)
        self.active = "rgb"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stems[self.active]
        return stem(x)


def _replace(root: nn.Module, path: str, module: nn.Module) -> nn.Module:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    old = getattr(parent, name) if not name.isdigit() else parent[int(name)]  # type: ignore[index]
    if name.isdigit():
        parent[int(name)] = module  # type: ignore[index]
    else:
        setattr(parent, name, module)
    return old


class MultiviewNet(nn.Module):
    """``backbone`` with its stem (the submodule at ``stem_path``) replaced by one stem per view.

    ``make_stem(in_channels)`` builds a view's stem; the ``"rgb"`` view keeps the backbone's own.
    ``forward(x, view="rgb")``: x (B, C_view, T, H, W) -> logits (B, num_classes); the rest of
    the network is the same module for every view.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        stem_path: str,
        make_stem: Callable[[int], nn.Module],
        views: Sequence[str] = ("rgb", "tg", "flow"),
    ) -> None:
        super().__init__()
        self.views = _check_views(views)
        placeholder = nn.Identity()
        rgb_stem = _replace(backbone, stem_path, placeholder)
        stems = {"rgb": rgb_stem}
        for view in self.views[1:]:
            stems[view] = make_stem(VIEW_CHANNELS[view])
        self.view_stems = _ViewStems(stems)
        _replace(backbone, stem_path, self.view_stems)
        self.backbone = backbone
        self.stem_path = stem_path

    def forward(self, x: torch.Tensor, view: str = "rgb") -> torch.Tensor:
        if view not in self.view_stems.stems:
            raise ValueError(f"this model has no {view!r} view; its views are {self.views}")
        expected = VIEW_CHANNELS[view]
        if x.shape[1] != expected:
            raise ValueError(
                f"the {view!r} view takes {expected} channels, got input {tuple(x.shape)}"
            )
        self.view_stems.active = view
        try:
            return self.backbone(x)
        finally:
            self.view_stems.active = "rgb"

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters every view uses (all but the per-view stems)."""
        stem_ids = {id(p) for p in self.view_stems.parameters()}
        return [p for p in self.parameters() if id(p) not in stem_ids]


# -- Slow-only R50 (paperzoo-slowfast) --------------------------------------------------------


def mvpl_slow_r50(
    *, num_classes: int = 400, views: Sequence[str] = ("rgb", "tg", "flow"), **kwargs: Any
) -> MultiviewNet:
    """Slow-only R50 8x8 (PySlowFast SLOW_8x8_R50, via :func:`paperzoo.slowfast.model.create_slow`;
    32,454,096 parameters with 400 classes) with a stem per view. ``kwargs`` go to
    ``create_slow`` (``dropout_rate``, ``head_pool_kernel_size``, ...)."""
    from paperzoo.slowfast.model import ResNetStem, create_slow, init_resnet_weights

    backbone = create_slow(num_classes=num_classes, **kwargs)
    rgb = backbone.stem[0]
    width = rgb.conv.out_channels
    temporal_kernel = rgb.conv.kernel_size[0]

    def make_stem(in_channels: int) -> nn.Module:
        stem = ResNetStem(
            in_channels=in_channels, out_channels=width, temporal_kernel=temporal_kernel
        )
        init_resnet_weights(stem)
        return stem

    return MultiviewNet(backbone, stem_path="stem.0", make_stem=make_stem, views=views)


# -- R3D (torchvision) ------------------------------------------------------------------------


def _r3d_stem(in_channels: int, width: int) -> nn.Module:
    """torchvision's R3D ``BasicStem`` with ``in_channels`` inputs and ``width`` outputs."""
    stem = nn.Sequential(
        nn.Conv3d(in_channels, width, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )
    _init_torchvision(stem)
    return stem


def _init_torchvision(module: nn.Module) -> None:
    """torchvision VideoResNet's initialisation."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)


def mvpl_r3d_18(
    *, num_classes: int = 400, views: Sequence[str] = ("rgb", "tg", "flow")
) -> MultiviewNet:
    """torchvision's R3D-18 (33,371,472 parameters with 400 classes) with a stem per view."""
    from torchvision.models.video import r3d_18

    return MultiviewNet(
        r3d_18(num_classes=num_classes),
        stem_path="stem",
        make_stem=lambda c: _r3d_stem(c, 64),
        views=views,
    )


def narrow_r3d(
    *,
    num_classes: int,
    width: int = 16,
    layers: Sequence[int] = (1, 1, 1, 1),
    in_channels: int = 3,
    dropout: float = 0.0,
) -> nn.Module:
    """A narrow R3D for CPU runs, from torchvision's own VideoResNet, BasicBlock and
    Conv3DSimple: stage widths ``width * (1, 2, 4, 8)`` (R3D-18 is width 64, layers 2, 2, 2, 2),
    the same stem, strides and initialisation. Any input size."""
    from torchvision.models.video.resnet import BasicBlock, Conv3DSimple, VideoResNet

    # VideoResNet hard-codes width 64; build the same module with its own _make_layer.
    net = VideoResNet.__new__(VideoResNet)
    nn.Module.__init__(net)
    net.inplanes = width
    net.stem = _r3d_stem(in_channels, width)
    for i, blocks in enumerate(layers):
        layer = net._make_layer(
            BasicBlock, Conv3DSimple, width * 2**i, blocks, stride=1 if i == 0 else 2
        )
        setattr(net, f"layer{i + 1}", layer)
    net.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
    fc = nn.Linear(width * 8 * BasicBlock.expansion, num_classes)
    net.fc = nn.Sequential(nn.Dropout(dropout), fc) if dropout > 0 else fc
    _init_torchvision(net)
    return net


def mvpl_r3d_tiny(
    *,
    num_classes: int = 12,
    views: Sequence[str] = ("rgb", "tg", "flow"),
    width: int = 16,
    layers: Sequence[int] = (1, 1, 1, 1),
    dropout: float = 0.0,
) -> MultiviewNet:
    """:func:`narrow_r3d` (width 16, one BasicBlock per stage) with a stem per view: the
    tiny study's CPU backbone."""
    return MultiviewNet(
        narrow_r3d(num_classes=num_classes, width=width, layers=layers, dropout=dropout),
        stem_path="stem",
        make_stem=lambda c: _r3d_stem(c, width),
        views=views,
    )
