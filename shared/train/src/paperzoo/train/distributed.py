"""torchrun helpers: process-group setup, rank queries and collectives that also work alone.

Every function here works without an initialised process group (one process): ``all_gather``
returns its input, ``all_reduce_mean`` returns its input, ``barrier`` does nothing. So paper
code calls them unconditionally and runs the same on a laptop and under
``torchrun --nproc-per-node N``.

``all_gather_with_grad`` keeps the autograd graph (for contrastive losses that use the other
ranks' embeddings as negatives, e.g. SimCLR/MoCo v3); its backward sums each rank's gradient.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_gather",
    "all_gather_object",
    "all_gather_with_grad",
    "all_reduce_mean",
    "barrier",
    "broadcast_object",
    "destroy_distributed",
    "get_local_rank",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_dist",
    "is_main",
    "per_process_batch",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job, and the device it should use."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None when running alone


def is_dist() -> bool:
    """True when a process group is initialised and has more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main() -> bool:
    return get_rank() == 0


def per_process_batch(global_batch: int, per_process: int, world_size: int) -> int:
    """The recipes' batch rule: ``per_process`` when > 0, else ``global_batch / world_size``.

    A global batch that does not split evenly over the processes is an error (a silently
    smaller batch would change the recipe), naming the setting to use instead.
    """
    if per_process > 0:
        return per_process
    if global_batch % world_size:
        raise ValueError(
            f"global_batch_size {global_batch} is not divisible by {world_size} processes; "
            "set data.batch_size (per process) explicitly"
        )
    return global_batch // world_size


def _pick_device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        return (
            torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
        )
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def init_distributed(
    device: str = "auto", backend: str | None = None, timeout_s: float = 1800.0
) -> DistInfo:
    """Join the torchrun job described by the environment, or run alone.

    Reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` as torchrun sets them. With ``WORLD_SIZE > 1``
    it initialises the default process group once (NCCL on CUDA, gloo on CPU unless ``backend``
    says otherwise) and pins this process to ``cuda:LOCAL_RANK``. Calling it again is harmless.
    """
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = get_local_rank()
    dev = _pick_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        chosen = backend or ("nccl" if dev.type == "cuda" else "gloo")
        dist.init_process_group(
            backend=chosen,
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=dev if dev.type == "cuda" else None,
        )
    be = dist.get_backend() if dist.is_initialized() else None
    return DistInfo(get_rank(), get_world_size(), local_rank, dev, be)


def destroy_distributed() -> None:
    """Tear down the default process group if this process created one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_dist():
        dist.barrier()


@torch.no_grad()
def all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, in rank order; no gradient.

    (B, ...) on each rank -> (world_size * B, ...). Every rank must pass the same shape.
    Alone, returns ``tensor`` itself.
    """
    if not is_dist():
        return tensor
    out = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(out, tensor.contiguous())
    return torch.cat(out, dim=0)


class _AllGatherWithGrad(torch.autograd.Function):
    # Written here because torch.distributed.nn.functional.all_gather is deprecated and its
    # replacement lives in a private module; the backward is the usual one (SimCLR's
    # GatherLayer): sum the upstream gradients over ranks, keep this rank's slice.
    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        ctx.rows = tensor.shape[0]
        out = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(out, tensor)
        return torch.cat(out, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Like :func:`all_gather`, but differentiable: gradients flow back to every rank's input.

    The backward pass sums the gradients that all ranks computed for this rank's slice, which is
    the gradient of the sum of the per-rank losses. Alone, returns ``tensor`` itself.
    """
    if not is_dist():
        return tensor
    return _AllGatherWithGrad.apply(tensor.contiguous())


@torch.no_grad()
def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over ranks (a new tensor); alone, ``tensor`` itself."""
    if not is_dist():
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def all_gather_object(obj: object) -> list[object]:
    """Every rank's ``obj`` (picklable), in rank order; alone, ``[obj]``.

    Only for objects this job's own processes produced (it pickles over the process group).
    """
    if not is_dist():
        return [obj]
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: object, src: int = 0) -> object:
    """Rank ``src``'s ``obj`` on every rank; alone, ``obj``."""
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
