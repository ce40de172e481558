"""MoCo: a query encoder, a momentum key encoder and a queue of negative keys.

Papers:
- Kaiming He, Haoqi Fan, Yuxin Wu, Saining Xie, Ross Girshick. "Momentum Contrast for
  Unsupervised Visual Representation Learning" (MoCo v1). CVPR 2020, arXiv:1911.05722.
- Xinlei Chen, Haoqi Fan, Ross Girshick, Kaiming He. "Improved Baselines with Momentum
  Contrastive Learning" (MoCo v2). arXiv:2003.04297.

Follows the official code, https://github.com/facebookresearch/moco (``moco/builder.py``):
the module keeps the official attribute names (``encoder_q``, ``encoder_k``, ``queue``,
``queue_ptr``; the MLP head as ``fc.0``/``fc.2``), so an official checkpoint's keys are this
module's ``state_dict`` keys behind a DDP ``module.`` prefix (see :mod:`paperzoo.mocov2.convert`).

This module is the architecture and its state: encoders, head, queue, the momentum update and
the contrastive logits. Everything that talks to other processes (shuffle-BN, gathering keys
before they are enqueued) lives in :mod:`paperzoo.mocov2.method`.

Sizes:
- ``mocov2_resnet50``: torchvision ResNet-50 encoders, MLP head 2048-2048-128, T=0.2,
  K=65536, m=0.999. Trainable parameters: ResNet-50 without fc (23,508,032) + head
  (4,458,624) = 27,966,656.
- ``mocov1_resnet50``: the same with a linear 2048-128 head and T=0.07 (MoCo v1).
- ``mocov2_resnet18_cifar``: torchvision ResNet-18 with the small-image stem (3x3 stride-1
  conv, no max-pool), as in the official CIFAR-10 Colab demo; 512-512-128 head.
- ``mocov2_resnet10_narrow``: a ResNet-10 (one BasicBlock per stage) with widths 16-32-64-128
  and the small-image stem, for the CPU ``tiny`` recipe on 28x28 MNIST; 128-128-128 head. Not
  from the paper: it exists so that a whole reproduction fits in minutes on two CPU cores.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock, ResNet, conv1x1

__all__ = [
    "MoCo",
    "NarrowResNet",
    "info_nce_logits",
    "mocov1_resnet50",
    "mocov2_resnet10_narrow",
    "mocov2_resnet18_cifar",
    "mocov2_resnet50",
    "resnet_pooled_features",
]


# -- encoders ------------------------------------------------------------------------------


class NarrowResNet(nn.Module):
    """A small ResNet built from torchvision's ``BasicBlock``, with free stage widths.

    torchvision's ``ResNet`` hard-codes the widths 64-128-256-512, which is too heavy for a
    CPU run on 28x28 images, hence this class. It keeps torchvision's attribute names
    (``conv1``, ``bn1``, ``relu``, ``maxpool``, ``layer1..4``, ``avgpool``, ``fc``) so the same
    code pools features from it and from torchvision ResNets.

    Args:
        widths: channels of the four stages.
        layers: BasicBlocks per stage.
        num_classes: output size of ``fc`` (the projection dim when used inside MoCo).
        in_chans: input channels.
    Input (B, in_chans, H, W) float; ``fc`` output (B, num_classes).
    """

    def __init__(
        self,
        *,
        widths: Sequence[int] = (32, 64, 128, 256),
        layers: Sequence[int] = (1, 1, 1, 1),
        num_classes: int = 128,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if len(widths) != 4 or len(layers) != 4:
            raise ValueError(f"NarrowResNet needs 4 stages, got widths={widths}, layers={layers}")
        # Small-image stem: 3x3 stride-1 conv and no max-pool, as for CIFAR in the MoCo Colab.
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        inplanes = widths[0]
        stages = []
        for i, (width, blocks) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2
            stage = []
            for _ in range(blocks):
                downsample = None
                if stride != 1 or inplanes != width:
                    downsample = nn.Sequential(
                        conv1x1(inplanes, width, stride), nn.BatchNorm2d(width)
                    )
                stage.append(BasicBlock(inplanes, width, stride, downsample))
                inplanes, stride = width, 1
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():  # torchvision ResNet's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(resnet_pooled_features(self, x))


def resnet_pooled_features(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Globally pooled features of a torchvision-style ResNet, i.e. the input of its ``fc``.

    (B, C, H, W) float -> (B, D), D = 2048 for ResNet-50, 512 for ResNet-18.

    An encoder with a ``forward_features(x) -> (B, D)`` method pools itself and that method is
    used instead: the hook by which other backbones (the video ResNets of paperzoo-taco, whose
    input is (B, C, T, H, W)) run inside MoCo. Its ``forward`` must be ``fc(forward_features(x))``.
    """
    forward_features = getattr(encoder, "forward_features", None)
    if callable(forward_features):
        return forward_features(x)
    x = encoder.maxpool(encoder.relu(encoder.bn1(encoder.conv1(x))))
    x = encoder.layer4(encoder.layer3(encoder.layer2(encoder.layer1(x))))
    return torch.flatten(encoder.avgpool(x), 1)


def _small_image_stem(encoder: ResNet, in_chans: int) -> ResNet:
    """Swap the ImageNet stem (7x7 stride-2 conv + max-pool) for a 3x3 stride-1 conv."""
    encoder.conv1 = nn.Conv2d(in_chans, encoder.conv1.out_channels, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(encoder.conv1.weight, mode="fan_out", nonlinearity="relu")
    encoder.maxpool = nn.Identity()
    return encoder


# -- contrastive logits ----------------------------------------------------------------------


def info_nce_logits(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
) -> torch.Tensor:
    """InfoNCE logits of MoCo (Eq. 1 of MoCo v1): positive first, then the K queue negatives.

    Args:
        q: (N, C) L2-normalised queries.
        k: (N, C) L2-normalised positive keys (no gradient).
        queue: (C, K) L2-normalised negative keys.
        temperature: tau; the logits are cosine similarities divided by it.
    Returns:
        (N, 1 + K) logits; the target class of every row is 0, so
        ``F.cross_entropy(logits, zeros)`` is the InfoNCE loss.
    """
    l_pos = (q * k).sum(dim=1, keepdim=True)
    l_neg = q @ queue.detach()
    return torch.cat([l_pos, l_neg], dim=1) / temperature


# -- the MoCo module --------------------------------------------------------------------------


class MoCo(nn.Module):
    """Query encoder, momentum key encoder and queue (the official ``moco.builder.MoCo``).

    Args:
        encoder_fn: ``encoder_fn(num_classes=dim)`` returns a torchvision-style ResNet
            whose ``fc`` maps pooled features to ``dim``.
        dim: projection (key) dimension, 128.
        queue_size: K, the number of negative keys, 65536 on ImageNet.
        momentum: m of the key-encoder update ``k <- m k + (1 - m) q``, 0.999.
        temperature: tau of InfoNCE; 0.07 in MoCo v1, 0.2 in MoCo v2.
        mlp: MoCo v2's 2-layer MLP head (fc -> Linear-ReLU-Linear, keys ``fc.0``/``fc.2``);
            False gives MoCo v1's linear head.
        head_fn: a projector of its own instead: ``head_fn(num_features, dim)`` returns the
            module that replaces ``fc`` in both encoders (``mlp`` is then ignored). Papers built
            on MoCo use it, e.g. asymsiam's Linear-BN-ReLU-Linear-ReLU-Linear.

    Trainable parameters are those of ``encoder_q`` only: ``encoder_k`` is a
    ``requires_grad=False`` copy updated by :meth:`momentum_update_key_encoder`.
    """

    def __init__(
        self,
        encoder_fn: Callable[..., nn.Module],
        *,
        dim: int = 128,
        queue_size: int = 65536,
        momentum: float = 0.999,
        temperature: float = 0.2,
        mlp: bool = True,
        head_fn: Callable[[int, int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"MoCo momentum must be in [0, 1], got {momentum}")
        if queue_size < 1:
            raise ValueError(f"MoCo queue_size must be >= 1, got {queue_size}")
        self.dim = dim
        self.queue_size = queue_size
        self.momentum = momentum
        self.temperature = temperature
        self.mlp = mlp

        self.encoder_q = encoder_fn(num_classes=dim)
        self.num_features = self.encoder_q.fc.weight.shape[1]
        if head_fn is not None:
            self.encoder_q.fc = head_fn(self.num_features, dim)
        elif mlp:
            hidden = self.num_features
            self.encoder_q.fc = nn.Sequential(
                nn.Linear(hidden, hidden), nn.ReLU(), self.encoder_q.fc
            )
        # The key encoder starts as an exact copy and never receives gradients.
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for param in self.encoder_k.parameters():
            param.requires_grad = False

        # Random unit keys until real ones arrive, as the official code.
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    # -- features --------------------------------------------------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Query-encoder pooled features: (B, C, H, W) -> (B, num_features), e.g. 2048 for R50."""
        return resnet_pooled_features(self.encoder_q, x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Projection of pooled features by the query head: (B, num_features) -> (B, dim)."""
        return self.encoder_q.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised query embeddings: (B, C, H, W) -> (B, dim)."""
        return F.normalize(self.encoder_q(x), dim=1)

    # -- MoCo state updates ------------------------------------------------------------------

    @torch.no_grad()
    def momentum_update_key_encoder(self) -> None:
        """``theta_k <- m theta_k + (1 - m) theta_q`` for every parameter (not BN buffers).

        As in the official code, BN running statistics of the key encoder are its own (they
        follow the batches it sees), only parameters are averaged.
        """
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.mul_(self.momentum).add_(param_q.detach(), alpha=1.0 - self.momentum)

    @torch.no_grad()
    def dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` (N, dim) over the oldest queue entries and advance the pointer.

        ``keys`` must already hold the keys of every process (see
        :class:`paperzoo.mocov2.method.MoCoMethod`). Columns ``ptr .. ptr+N-1`` (mod K) are
        replaced; the official code asserts ``K % N == 0``, here the write wraps around
        instead, which is the same thing whenever that holds.
        """
        n = keys.shape[0]
        if n > self.queue_size:
            raise ValueError(
                f"cannot enqueue {n} keys into a queue of {self.queue_size}; use a larger queue_size"
            )
        ptr = int(self.queue_ptr)
        idx = (ptr + torch.arange(n, device=keys.device)) % self.queue_size
        self.queue[:, idx] = keys.detach().to(self.queue.dtype).T
        self.queue_ptr[0] = (ptr + n) % self.queue_size

    def contrastive_logits(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(N, 1 + K) InfoNCE logits of normalised queries ``q`` against ``k`` and the queue."""
        return info_nce_logits(q, k, self.queue.clone(), self.temperature)


# -- factories ------------------------------------------------------------------------------


def _create_moco(encoder_fn: Callable[..., nn.Module], **kwargs) -> MoCo:
    return MoCo(encoder_fn, **kwargs)


def mocov2_resnet50(
    *,
    dim: int = 128,
    queue_size: int = 65536,
    momentum: float = 0.999,
    temperature: float = 0.2,
    mlp: bool = True,
) -> MoCo:
    """MoCo v2 with torchvision ResNet-50 encoders and the 2048-2048-128 MLP head."""
    return _create_moco(
        resnet50,
        dim=dim,
        queue_size=queue_size,
        momentum=momentum,
        temperature=temperature,
        mlp=mlp,
    )


def mocov1_resnet50(
    *,
    dim: int = 128,
    queue_size: int = 65536,
    momentum: float = 0.999,
    temperature: float = 0.07,
    mlp: bool = False,
) -> MoCo:
    """MoCo v1: ResNet-50 encoders, linear 2048-128 head, temperature 0.07."""
    return _create_moco(
        resnet50,
        dim=dim,
        queue_size=queue_size,
        momentum=momentum,
        temperature=temperature,
        mlp=mlp,
    )


def mocov2_resnet18_cifar(
    *,
    in_chans: int = 3,
    dim: int = 128,
    queue_size: int = 4096,
    momentum: float = 0.99,
    temperature: float = 0.1,
    mlp: bool = True,
) -> MoCo:
    """MoCo v2 on ResNet-18 with the small-image stem, defaults of the official CIFAR Colab."""

    def encoder_fn(num_classes: int) -> nn.Module:
        return _small_image_stem(resnet18(num_classes=num_classes), in_chans)

    return _create_moco(
        encoder_fn,
        dim=dim,
        queue_size=queue_size,
        momentum=momentum,
        temperature=temperature,
        mlp=mlp,
    )


def mocov2_resnet10_narrow(
    *,
    in_chans: int = 3,
    widths: Sequence[int] = (16, 32, 64, 128),
    dim: int = 128,
    queue_size: int = 4096,
    momentum: float = 0.99,
    temperature: float = 0.1,
    mlp: bool = True,
) -> MoCo:
    """MoCo v2 on a narrow ResNet-10 (widths 16-32-64-128, small-image stem) for CPU runs."""

    def encoder_fn(num_classes: int) -> nn.Module:
        return NarrowResNet(widths=tuple(widths), num_classes=num_classes, in_chans=in_chans)

    return _create_moco(
        encoder_fn,
        dim=dim,
        queue_size=queue_size,
        momentum=momentum,
        temperature=temperature,
        mlp=mlp,
    )
