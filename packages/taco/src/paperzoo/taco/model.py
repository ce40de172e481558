"""TaCo's video encoders inside MoCo, and the transformation-prediction heads.

Paper: Yutong Bai, Haoqi Fan, Ishan Misra, Ganesh Venkatesh, Yongyi Lu, Yuyin Zhou, Qihang Yu,
Vikas Chandra, Alan Yuille. "Can Temporal Information Help with Contrastive Self-Supervised
Learning?" arXiv:2011.13046 (TaCo). No official code was released.

TaCo is MoCo (paperzoo-mocov2's :class:`~paperzoo.mocov2.model.MoCo`, by declared dependency)
on a video backbone, plus one small head per temporal transformation that predicts which
version of the transformation was applied to the query clip (:class:`TaCo`). The backbones are
the three of the paper's experiments:

- R3D-18 and R(2+1)D-18: torchvision's video ResNets (``r3d_18``, ``r2plus1d_18``), built
  here by :class:`VideoResNetEncoder`, a ``VideoResNet`` that pools itself
  (``forward_features``, the MoCo hook) and whose state-dict keys are torchvision's, so a
  torchvision checkpoint loads strictly (tested for parity with torchvision's forward).
- Slow-only R50: paperzoo-slowfast's ``create_slow`` without its head (:class:`SlowEncoder`).
- ``taco_r3d_narrow``: an R3D-10 (one BasicBlock per stage, widths 16-32-64-128, a 3x3x3
  stem of spatial stride 2) for the CPU tiny study; not from the paper.

Sizes (backbone without fc, then MoCo v2's MLP head F-F-128 and the heads): R3D-18 has
33,166,272 backbone parameters (torchvision r3d_18 has 33,371,472 with its 400-way fc),
R(2+1)D-18 31,300,125 (torchvision: 31,505,325 with its fc), Slow-only R50 31,634,496
(slow_r50: 32,454,096 with its fc). MoCo v2 projector F-F-128 and the four heads F-F-k on top.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.video.resnet import (
    BasicBlock,
    BasicStem,
    Conv2Plus1D,
    Conv3DSimple,
    R2Plus1dStem,
    VideoResNet,
)

from paperzoo.mocov2.model import MoCo

__all__ = [
    "SlowEncoder",
    "TaCo",
    "VideoResNetEncoder",
    "taco_r2plus1d_18",
    "taco_r3d_18",
    "taco_r3d_narrow",
    "taco_slow_r50",
]

TORCHVISION_WIDTHS = (64, 128, 256, 512)


class NarrowStem(nn.Sequential):
    """A 3x3x3 stem for small clips (32 px): conv-BN-ReLU, spatial stride 2, temporal stride 1
    (torchvision's R3D stem is 3x7x7 with the same strides, sized for 112 px)."""

    def __init__(self, in_chans: int, width: int) -> None:
        super().__init__(
            nn.Conv3d(in_chans, width, 3, stride=(1, 2, 2), padding=1, bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )


class VideoResNetEncoder(VideoResNet):
    """torchvision's ``VideoResNet`` with free stage widths and a ``forward_features`` that pools.

    With the default widths, ``BasicStem`` and ``Conv3DSimple`` blocks ``[2, 2, 2, 2]`` this is
    torchvision's ``r3d_18`` (the same modules, keys and initialisation); with ``Conv2Plus1D``
    and ``R2Plus1dStem`` it is ``r2plus1d_18``. ``torchvision.models.video.VideoResNet`` fixes
    the widths at 64-128-256-512 in its constructor, hence this class: the layers are built with
    its own ``_make_layer`` and initialised as its constructor does.

    Input (B, C, T, H, W) float; ``forward_features`` gives (B, widths[-1]), ``forward`` the
    ``fc`` output.
    """

    def __init__(
        self,
        block: type[BasicBlock],
        conv_makers: Sequence[type[nn.Module]],
        layers: Sequence[int],
        stem: nn.Module,
        *,
        widths: Sequence[int] = TORCHVISION_WIDTHS,
        num_classes: int = 400,
    ) -> None:
        nn.Module.__init__(self)
        if len(widths) != 4 or len(layers) != 4 or len(conv_makers) != 4:
            raise ValueError(f"a video ResNet has 4 stages, got widths={widths}, layers={layers}")
        self.stem = stem
        self.inplanes = _out_channels(stem)
        for i, (width, depth, conv) in enumerate(zip(widths, layers, conv_makers)):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", self._make_layer(block, conv, width, depth, stride))
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)
        for m in self.modules():  # torchvision VideoResNet's initialisation
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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled res5 features: (B, C, T, H, W) -> (B, num_features)."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def _out_channels(stem: nn.Module) -> int:
    convs = [m for m in stem.modules() if isinstance(m, nn.Conv3d)]
    return convs[-1].out_channels


class SlowEncoder(nn.Module):
    """paperzoo-slowfast's Slow-only R50 without its head, globally pooled, then ``fc``.

    ``backbone`` is ``create_slow(head=None)`` (keys ``backbone.stem.*``,
    ``backbone.stages.*``); :func:`slow_r50_state_dict` maps a ``slow_r50`` classifier's state
    dict onto it. Input (B, 3, T, H, W); ``forward_features`` (B, 2048).
    """

    def __init__(self, num_classes: int = 128, **slow_kwargs: Any) -> None:
        super().__init__()
        from paperzoo.slowfast.model import create_slow

        self.backbone = create_slow(head=None, **slow_kwargs)
        width = slow_kwargs.get("width", 64)
        self.fc = nn.Linear(width * 32, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        (features,) = self.backbone.forward_features(x)
        return features.mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def slow_r50_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A paperzoo-slowfast ``slow_r50`` state dict as :class:`SlowEncoder` backbone keys
    (``head.*`` dropped: the encoder has its own ``fc``)."""
    return {f"backbone.{k}": v for k, v in state_dict.items() if not k.startswith("head.")}


# -- TaCo --------------------------------------------------------------------------------------


def _mlp_head(num_features: int, num_classes: int) -> nn.Sequential:
    """A transformation head: Linear(F, F)-ReLU-Linear(F, classes), MoCo v2's projector shape
    (the head's form is our choice; the paper's text was not available here)."""
    return nn.Sequential(
        nn.Linear(num_features, num_features), nn.ReLU(), nn.Linear(num_features, num_classes)
    )


class TaCo(MoCo):
    """MoCo on a video encoder plus one prediction head per temporal transformation.

    Args:
        encoder_fn: ``encoder_fn(num_classes=dim)`` returns a video encoder with ``fc`` and a
            pooling ``forward_features`` (:class:`VideoResNetEncoder`, :class:`SlowEncoder`).
        tasks: transformation name -> number of classes its head predicts (for example
            ``{"rotation": 4, "shuffle": 2, "reverse": 2, "speed": 3}``, from
            :func:`paperzoo.taco.transforms.task_classes`).
        moco_kwargs: ``dim``, ``queue_size``, ``momentum``, ``temperature``, ``mlp`` of MoCo.

        byol_predictor: add BYOL's predictor on the online (query) projection,
            Linear(dim, F)-BN-ReLU-Linear(F, dim) (``framework="byol"`` of
            :class:`~paperzoo.taco.method.TaCoMethod`); off for MoCo and SimCLR.

    ``heads[name]`` maps the query encoder's pooled features (B, F) to (B, classes). The heads
    belong to the query side only: the momentum key encoder is MoCo's.
    """

    def __init__(
        self,
        encoder_fn: Callable[..., nn.Module],
        *,
        tasks: Mapping[str, int],
        byol_predictor: bool = False,
        **moco_kwargs: Any,
    ) -> None:
        super().__init__(encoder_fn, **moco_kwargs)
        self.tasks = dict(tasks)
        self.heads = nn.ModuleDict(
            {name: _mlp_head(self.num_features, n) for name, n in self.tasks.items()}
        )
        self.predictor = (
            nn.Sequential(
                nn.Linear(self.dim, self.num_features),
                nn.BatchNorm1d(self.num_features),
                nn.ReLU(),
                nn.Linear(self.num_features, self.dim),
            )
            if byol_predictor
            else None
        )

    def predict_transformations(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each head's logits (B, classes) on pooled query features (B, F)."""
        return {name: head(features) for name, head in self.heads.items()}


DEFAULT_TASKS = {"rotation": 4, "shuffle": 2, "reverse": 2, "speed": 3}


def _taco(encoder_fn: Callable[..., nn.Module], tasks: Mapping[str, int] | None, **kw) -> TaCo:
    return TaCo(encoder_fn, tasks=dict(DEFAULT_TASKS if tasks is None else tasks), **kw)


def taco_r3d_18(*, tasks: Mapping[str, int] | None = None, in_chans: int = 3, **moco) -> TaCo:
    """TaCo on torchvision's R3D-18 (3x7x7 stem, 112 px clips); MoCo v2 head, K=65536."""

    def encoder_fn(num_classes: int) -> nn.Module:
        stem = BasicStem()
        if in_chans != 3:
            stem[0] = nn.Conv3d(in_chans, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False)
        return VideoResNetEncoder(
            BasicBlock, [Conv3DSimple] * 4, [2, 2, 2, 2], stem, num_classes=num_classes
        )

    return _taco(encoder_fn, tasks, **moco)


def taco_r2plus1d_18(*, tasks: Mapping[str, int] | None = None, **moco) -> TaCo:
    """TaCo on torchvision's R(2+1)D-18; MoCo v2 head, K=65536."""

    def encoder_fn(num_classes: int) -> nn.Module:
        return VideoResNetEncoder(
            BasicBlock, [Conv2Plus1D] * 4, [2, 2, 2, 2], R2Plus1dStem(), num_classes=num_classes
        )

    return _taco(encoder_fn, tasks, **moco)


def taco_slow_r50(*, tasks: Mapping[str, int] | None = None, **moco) -> TaCo:
    """TaCo on paperzoo-slowfast's Slow-only R50 (8x8); MoCo v2 head, K=65536."""

    def encoder_fn(num_classes: int) -> nn.Module:
        return SlowEncoder(num_classes=num_classes)

    return _taco(encoder_fn, tasks, **moco)


def taco_r3d_narrow(
    *,
    tasks: Mapping[str, int] | None = None,
    widths: Sequence[int] = (16, 32, 64, 128),
    in_chans: int = 3,
    dim: int = 64,
    queue_size: int = 1024,
    momentum: float = 0.99,
    temperature: float = 0.1,
    mlp: bool = True,
    byol_predictor: bool = False,
) -> TaCo:
    """TaCo on an R3D-10 (one BasicBlock per stage, widths 16-32-64-128, a 3x3x3 stem of spatial
    stride 2) for 32 px CPU clips; not from the paper. K=1024, m=0.99, T=0.1 as the MoCo CIFAR
    demo."""

    def encoder_fn(num_classes: int) -> nn.Module:
        return VideoResNetEncoder(
            BasicBlock, [Conv3DSimple] * 4, [1, 1, 1, 1], NarrowStem(in_chans, widths[0]),
            widths=tuple(widths), num_classes=num_classes,
        )  # fmt: skip

    return _taco(
        encoder_fn, tasks, dim=dim, queue_size=queue_size, momentum=momentum,
        temperature=temperature, mlp=mlp, byol_predictor=byol_predictor,
    )  # fmt: skip
