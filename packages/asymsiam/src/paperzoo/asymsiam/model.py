"""Asym-Siam: MoCo with the projector of the asymmetry study.

Paper: Xiao Wang, Haoqi Fan, Yuandong Tian, Daisuke Kihara, Xinlei Chen. "On the Importance of
Asymmetry for Siamese Representation Learning". CVPR 2022, arXiv:2204.00613.
Official code: https://github.com/facebookresearch/asym-siam (``moco/builder.py``).

The model is paperzoo-mocov2's :class:`~paperzoo.mocov2.model.MoCo` (query = *source* encoder,
momentum key = *target* encoder, queue of negatives); nothing of it is copied here. What the
study changes in the model is the projector, which replaces ResNet's ``fc`` in both encoders:

    fc.0 Linear(2048, 2048) - fc.1 BatchNorm1d(2048) - fc.2 ReLU
    - fc.3 Linear(2048, 2048) - fc.4 ReLU - fc.5 Linear(2048, 128)

(the second hidden layer has no BN), with MoCo v2's K=65536, m=0.999, T=0.2. The five
designs of the paper are switches of the recipe and the method, not of the model
(:mod:`paperzoo.asymsiam.method`); AsymBN swaps the target projector's BN for a synchronised
one, which keeps the state-dict keys, so all six official checkpoints load into this model.

Sizes (trainable = the source encoder; the target is a momentum copy):
- ``asymsiam_resnet50``: torchvision ResNet-50 without fc (23,508,032) + projector
  (4,196,352 + 4,096 + 4,196,352 + 262,272 = 8,659,072) = 32,167,104 parameters.
- ``asymsiam_resnet10_narrow``: paperzoo-mocov2's narrow ResNet-10 (widths 16-32-64-128,
  small-image stem) with the same projector shape at width 128, for the CPU ``tiny`` study on
  28 px digits. Not from the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn
from torchvision.models import resnet50

from paperzoo.mocov2.model import MoCo, NarrowResNet

__all__ = ["asymsiam_projector", "asymsiam_resnet10_narrow", "asymsiam_resnet50"]


def asymsiam_projector(num_features: int, dim: int) -> nn.Sequential:
    """The official projector: Linear-BN-ReLU-Linear-ReLU-Linear, (B, num_features) -> (B, dim)."""
    return nn.Sequential(
        nn.Linear(num_features, num_features),
        nn.BatchNorm1d(num_features),
        nn.ReLU(),
        nn.Linear(num_features, num_features),
        nn.ReLU(),
        nn.Linear(num_features, dim),
    )


def _create_asymsiam(encoder_fn, **kwargs) -> MoCo:
    return MoCo(encoder_fn, head_fn=asymsiam_projector, **kwargs)


def _check_mlp(mlp: bool) -> None:
    # MoCo recipes pass ``moco.mlp``; asymsiam's projector is always the 3-layer one.
    if not mlp:
        raise ValueError("asymsiam models always use the official projector; set moco.mlp=true")


def asymsiam_resnet50(
    *,
    dim: int = 128,
    queue_size: int = 65536,
    momentum: float = 0.999,
    temperature: float = 0.2,
    mlp: bool = True,
) -> MoCo:
    """The paper's model: torchvision ResNet-50 encoders and the 2048-2048-2048-128 projector."""
    _check_mlp(mlp)
    return _create_asymsiam(
        resnet50, dim=dim, queue_size=queue_size, momentum=momentum, temperature=temperature
    )


def asymsiam_resnet10_narrow(
    *,
    in_chans: int = 3,
    widths: Sequence[int] = (16, 32, 64, 128),
    dim: int = 128,
    queue_size: int = 4096,
    momentum: float = 0.99,
    temperature: float = 0.2,
    mlp: bool = True,
) -> MoCo:
    """The same projector on paperzoo-mocov2's narrow ResNet-10, for CPU runs on small images."""
    _check_mlp(mlp)

    def encoder_fn(num_classes: int) -> nn.Module:
        return NarrowResNet(widths=tuple(widths), num_classes=num_classes, in_chans=in_chans)

    return _create_asymsiam(
        encoder_fn, dim=dim, queue_size=queue_size, momentum=momentum, temperature=temperature
    )
