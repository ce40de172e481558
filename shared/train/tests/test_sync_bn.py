"""SyncBatchNorm: two gloo processes against one process that sees the whole batch."""

from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from paperzoo.train.sync_bn import SyncBatchNorm, convert_sync_batchnorm

# Uneven per-rank batches (3 and 5 samples): the statistics must weight ranks by their counts.
SIZES = (3, 5)


def _data(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    n = sum(SIZES)
    x = torch.randn(n, *shape, generator=gen) * 3.0 + 1.5
    w = torch.randn(n, *shape, generator=gen)  # loss = sum(w * bn(x)): a non-trivial upstream
    return x, w


def _bn(cls: type[nn.Module], channels: int) -> nn.Module:
    bn = cls(channels, momentum=0.3)
    with torch.no_grad():  # non-trivial affine parameters
        bn.weight.copy_(torch.linspace(0.5, 2.0, channels))
        bn.bias.copy_(torch.linspace(-1.0, 1.0, channels))
    return bn


def _worker(rank: int, init_file: str, cls_name: str, shape, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        x, w = _data(tuple(shape))
        start = sum(SIZES[:rank])
        sl = slice(start, start + SIZES[rank])
        bn = convert_sync_batchnorm(_bn(getattr(nn, cls_name), shape[0]))
        assert isinstance(bn, SyncBatchNorm)
        x_r = x[sl].clone().requires_grad_(True)
        for _ in range(2):  # two steps: running statistics accumulate across calls
            x_r.grad = None
            bn.zero_grad()
            y = bn(x_r)
            (y * w[sl]).sum().backward()
        torch.save(
            {
                "y": y.detach(),
                "dx": x_r.grad,
                "dweight": bn.weight.grad,
                "dbias": bn.bias.grad,
                "state": {k: v.clone() for k, v in bn.state_dict().items()},
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(("cls_name", "shape"), [("BatchNorm1d", (6,)), ("BatchNorm2d", (4, 3, 5))])
def test_two_processes_equal_one_process_over_the_whole_batch(tmp_path, cls_name, shape):
    mp.spawn(
        _worker, args=(str(tmp_path / "init"), cls_name, shape, str(tmp_path)), nprocs=2, join=True
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]

    x, w = _data(shape)
    bn = _bn(getattr(nn, cls_name), shape[0])
    x = x.clone().requires_grad_(True)
    for _ in range(2):
        x.grad = None
        bn.zero_grad()
        y = bn(x)
        (y * w).sum().backward()

    tol = {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), y.detach(), **tol)
    # Input gradients: each rank's slice of the whole-batch gradient (cross-rank terms included).
    torch.testing.assert_close(torch.cat([r["dx"] for r in ranks]), x.grad, **tol)
    # Parameter gradients are per-rank sums; their sum (what DDP averages, times W) is the total.
    torch.testing.assert_close(ranks[0]["dweight"] + ranks[1]["dweight"], bn.weight.grad, **tol)
    torch.testing.assert_close(ranks[0]["dbias"] + ranks[1]["dbias"], bn.bias.grad, **tol)
    for r in ranks:  # every rank holds the running statistics of the whole batch
        for key, value in bn.state_dict().items():
            torch.testing.assert_close(r["state"][key], value, **tol)


def test_alone_it_is_plain_batchnorm_in_train_and_eval():
    torch.manual_seed(0)
    ref = _bn(nn.BatchNorm2d, 4)
    ours = convert_sync_batchnorm(_bn(nn.BatchNorm2d, 4))
    for _ in range(3):
        x = torch.randn(6, 4, 3, 3) * 2 + 1
        torch.testing.assert_close(ours(x), ref(x))
    ours.eval()
    ref.eval()
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(ours(x), ref(x))
    assert ours.state_dict().keys() == ref.state_dict().keys()
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)


def test_convert_keeps_keys_and_tensors_and_rejects_1d_input():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    before = model.state_dict()
    weight = model[1].weight
    convert_sync_batchnorm(model)
    assert isinstance(model[1], SyncBatchNorm)
    assert model[1].weight is weight  # moved, not copied: an optimizer built before still works
    assert model.state_dict().keys() == before.keys()
    with pytest.raises(ValueError, match=r"\(N, C, \*\)"):
        model[1](torch.randn(8))
