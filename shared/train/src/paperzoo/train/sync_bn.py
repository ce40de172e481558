"""Synchronised BatchNorm that runs on every backend torch.distributed has (gloo and NCCL).

torch's ``nn.SyncBatchNorm`` calls CUDA-only kernels (``batch_norm_gather_stats_with_counts``
and friends), so a CPU job under torchrun/gloo cannot use it. This one is written with plain
tensor ops and collectives, so it runs wherever the process group does:

- forward (training): every rank computes its per-channel mean and biased variance with
  ``torch.var_mean`` and its sample count; one ``all_gather`` brings all ranks' (mean, var, n)
  and each rank combines them with the parallel-variance formula (stable, unlike
  E[x^2] - E[x]^2): ``mean = sum n_r m_r / N``, ``var = sum n_r (v_r + (m_r - mean)^2) / N``.
  The running statistics move with the global mean and the unbiased global variance
  (``var * N / (N - 1)``), as one BatchNorm over the whole batch would move them.
- backward: with ``x_hat = (x - mean) / sqrt(var + eps)`` and upstream ``g``, one
  ``all_reduce`` of the per-channel sums of ``g`` and ``g * x_hat`` gives the global sums, and
  ``dx = weight / sqrt(var + eps) * (g - sum(g) / N - x_hat * sum(g * x_hat) / N)``, the
  gradient of BatchNorm over the whole batch. ``weight``/``bias`` get this rank's sums; DDP then
  averages them, as it does for torch's SyncBatchNorm.
- alone (no process group, or a group of one), in eval mode, or without batch statistics, it
  is exactly ``F.batch_norm``, i.e. ``nn.BatchNorm*d``.

Tested against one process that sees the whole batch (outputs, input and parameter gradients,
running statistics) in ``tests/test_sync_bn.py`` with two gloo processes.

The module keeps BatchNorm's parameters and buffers, so ``convert_sync_batchnorm`` swaps it
into a model without changing a single state-dict key.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm"]


def _group_size(group: Any) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


class _SyncBatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        eps: float,
        group: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        channels = x.shape[1]
        dims = [0, *range(2, x.ndim)]
        count = x.numel() // channels if channels else 0
        if count > 0:
            var, mean = torch.var_mean(x, dim=dims, correction=0)
        else:  # a rank with an empty batch contributes nothing
            var = mean = x.new_zeros(channels)
        stats = torch.stack([mean, var, torch.full_like(mean, float(count))]).to(torch.float32)
        world = _group_size(group)
        gathered = [torch.empty_like(stats) for _ in range(world)]
        dist.all_gather(gathered, stats.contiguous(), group=group)
        every = torch.stack(gathered)  # (W, 3, C)
        counts = every[:, 2]
        total = counts.sum(0)
        if bool((total <= 0).any()):
            raise ValueError("SyncBatchNorm: the batch is empty on every process")
        g_mean = (counts * every[:, 0]).sum(0) / total
        g_var = (counts * (every[:, 1] + (every[:, 0] - g_mean) ** 2)).sum(0) / total
        invstd = torch.rsqrt(g_var + eps)
        shape = [1, channels] + [1] * (x.ndim - 2)
        x_hat = (x - g_mean.to(x.dtype).view(shape)) * invstd.to(x.dtype).view(shape)
        y = x_hat
        if weight is not None:
            y = y * weight.view(shape)
        if bias is not None:
            y = y + bias.view(shape)
        ctx.save_for_backward(x_hat, invstd, weight, total)
        ctx.group = group
        ctx.has_bias = bias is not None
        ctx.mark_non_differentiable(g_mean, g_var, total)
        return y, g_mean, g_var, total

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor, *_: Any) -> tuple[Any, ...]:
        x_hat, invstd, weight, total = ctx.saved_tensors
        channels = x_hat.shape[1]
        dims = [0, *range(2, x_hat.ndim)]
        shape = [1, channels] + [1] * (x_hat.ndim - 2)
        grad_y = grad_y.contiguous()
        sum_dy = grad_y.sum(dims)
        sum_dy_xhat = (grad_y * x_hat).sum(dims)
        grad_weight = sum_dy_xhat if weight is not None else None
        grad_bias = sum_dy if ctx.has_bias else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            sums = torch.stack([sum_dy, sum_dy_xhat]).to(torch.float32)
            dist.all_reduce(sums, group=ctx.group)
            mean_dy = (sums[0] / total).to(grad_y.dtype).view(shape)
            mean_dy_xhat = (sums[1] / total).to(grad_y.dtype).view(shape)
            scale = invstd.to(grad_y.dtype).view(shape)
            if weight is not None:
                scale = scale * weight.view(shape)
            grad_x = scale * (grad_y - mean_dy - x_hat * mean_dy_xhat)
        return grad_x, grad_weight, grad_bias, None, None


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over the whole batch of every process in ``process_group`` (default: all).

    Drop-in for ``nn.BatchNorm1d/2d/3d``: input (N, C, *) float; the same parameters, buffers
    and state-dict keys. See the module docstring for the maths; alone it is plain BatchNorm.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm expects (N, C, *) input, got {input.dim()}D")

    def _momentum(self) -> float:
        # nn.BatchNorm's rule: a cumulative average when momentum is None.
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        use_batch_stats = self.training or not self.track_running_stats
        if not use_batch_stats or _group_size(self.process_group) == 1:
            if self.training and self.track_running_stats:
                momentum = self._momentum()
            else:
                momentum = 0.0 if self.momentum is None else self.momentum
            return F.batch_norm(
                input,
                self.running_mean if not self.training or self.track_running_stats else None,
                self.running_var if not self.training or self.track_running_stats else None,
                self.weight,
                self.bias,
                use_batch_stats,
                momentum,
                self.eps,
            )
        y, mean, var, total = _SyncBatchNormFunction.apply(
            input, self.weight, self.bias, self.eps, self.process_group
        )
        if self.track_running_stats:
            momentum = self._momentum()
            assert self.running_mean is not None and self.running_var is not None
            with torch.no_grad():
                unbiased = var * total / (total - 1).clamp_min(1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        return y

    def extra_repr(self) -> str:
        return super().extra_repr() + ", synchronised"


def convert_sync_batchnorm(module: nn.Module, process_group: Any = None) -> nn.Module:
    """``module`` with every BatchNorm layer replaced by :class:`SyncBatchNorm`, in place.

    Parameters and buffers are moved over (not copied), so the state dict's keys and values
    are unchanged and optimizers built before the call still hold the right tensors. Returns the
    converted module (a new one when ``module`` itself is a BatchNorm).
    """
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats, process_group,
        )  # fmt: skip
        if module.affine:
            sync.weight, sync.bias = module.weight, module.bias
        if module.track_running_stats:
            sync.running_mean = module.running_mean
            sync.running_var = module.running_var
            sync.num_batches_tracked = module.num_batches_tracked
        sync.train(module.training)
        return sync
    for name, child in module.named_children():
        converted = convert_sync_batchnorm(child, process_group)
        if converted is not child:
            setattr(module, name, converted)
    return module
