"""Run under ``torchrun --nproc-per-node 2`` (gloo, CPU) by test_distributed.py.

Checks the collectives in-process (asserting) and trains the same tiny model with DDP and FSDP2
(and with SyncBN on gloo), saving each rank's final weights so the test can compare ranks with each
other and with a single-process run on the doubled batch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tiny_methods import RegressionData, TinyRegression, make_ctx, tiny_configs

from paperzoo.train import Trainer
from paperzoo.train import distributed as dist_utils

BATCH = 8


def check_collectives() -> None:
    rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
    assert world == 2, world
    x = torch.full((2, 3), float(rank + 1))
    gathered = dist_utils.all_gather(x)
    assert gathered.shape == (4, 3) and gathered[:2].eq(1).all() and gathered[2:].eq(2).all(), (
        gathered
    )
    assert torch.allclose(
        dist_utils.all_reduce_mean(torch.tensor([float(rank)])), torch.tensor([0.5])
    )
    # Differentiable gather: rank r's loss is sum(g * w_r); the gradient reaching rank r's input
    # is the sum over ranks q of w_q restricted to rank r's slice.
    weights = [torch.arange(12.0).reshape(4, 3) * (q + 1) for q in range(world)]
    leaf = torch.full((2, 3), float(rank), requires_grad=True)
    (dist_utils.all_gather_with_grad(leaf) * weights[rank]).sum().backward()
    expected = sum(w[2 * rank : 2 * rank + 2] for w in weights)
    assert torch.equal(leaf.grad, expected), (leaf.grad, expected)
    objs = dist_utils.all_gather_object({"rank": rank})
    assert objs == [{"rank": 0}, {"rank": 1}], objs


def train(out: Path, *, bn: bool, **overrides) -> None:
    torch.manual_seed(0)
    method = TinyRegression(bn=bn)
    trainer_cfg, optim_cfg = tiny_configs(max_steps=6, **overrides)
    ctx = make_ctx(out, rank=dist_utils.get_rank(), world_size=dist_utils.get_world_size())
    trainer = Trainer(method, RegressionData(n=64), ctx, trainer_cfg, optim_cfg, batch_size=BATCH)
    state = trainer.fit()
    assert state.step == 6
    if trainer.strategy == "fsdp":  # every rank gathers the full (unsharded) weights
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(trainer.model, options=StateDictOptions(full_state_dict=True))
    else:
        state = trainer.model.state_dict()
    weights = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(weights, str(out / f"rank{dist_utils.get_rank()}.safetensors"))


def main() -> None:
    root = Path(sys.argv[1])
    dist_utils.init_distributed("cpu")
    check_collectives()
    train(root / "ddp", bn=False)
    # torch's SyncBatchNorm has no CPU kernel; the Trainer uses paperzoo.train.sync_bn on gloo.
    train(root / "syncbn", bn=True, sync_bn=True)
    train(root / "fsdp", bn=False, strategy="fsdp")
    dist_utils.barrier()
    if dist_utils.is_main():
        (root / "ok").write_text("ok")
    dist_utils.destroy_distributed()


if __name__ == "__main__":
    main()
