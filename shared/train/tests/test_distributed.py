"""A real 2-process torchrun job (gloo, CPU): collectives, DDP and FSDP2 against one process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import TESTS_DIR, subprocess_env
from safetensors.torch import load_file
from tiny_methods import RegressionData, TinyRegression, make_ctx, tiny_configs

from paperzoo.train import Trainer


@pytest.fixture(scope="module")
def torchrun_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("torchrun")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(TESTS_DIR / "scripts" / "ddp_worker.py"), str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert (out / "ok").is_file()
    return out


def _single_process_doubled_batch(tmp_path_factory, bn: bool) -> dict[str, torch.Tensor]:
    """The same model trained in one process on the global batch (2 x 8)."""
    torch.manual_seed(0)
    method = TinyRegression(bn=bn)
    trainer_cfg, optim_cfg = tiny_configs(max_steps=6)
    out = tmp_path_factory.mktemp("single")
    trainer = Trainer(
        method, RegressionData(n=64), make_ctx(out), trainer_cfg, optim_cfg, batch_size=16
    )
    trainer.fit()
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.fixture(scope="module")
def single_process_doubled_batch(tmp_path_factory):
    return {
        "plain": _single_process_doubled_batch(tmp_path_factory, bn=False),
        "bn": _single_process_doubled_batch(tmp_path_factory, bn=True),
    }


# "syncbn": BatchNorm synchronised over the 2 gloo ranks equals one BN over the doubled batch.
@pytest.mark.parametrize("strategy", ["ddp", "fsdp", "syncbn"])
def test_two_ranks_agree_and_match_one_process(
    torchrun_out, single_process_doubled_batch, strategy
):
    rank0 = load_file(str(torchrun_out / strategy / "rank0.safetensors"))
    rank1 = load_file(str(torchrun_out / strategy / "rank1.safetensors"))
    single = single_process_doubled_batch["bn" if strategy == "syncbn" else "plain"]
    assert set(rank0) == set(rank1) == set(single)
    for key in single:
        assert torch.equal(rank0[key], rank1[key]), f"{strategy}: ranks disagree on {key}"
        if single[key].is_floating_point():
            torch.testing.assert_close(rank0[key], single[key], rtol=1e-5, atol=1e-6, msg=key)
    # the weights moved: comparing against an untrained model would fail
    torch.manual_seed(0)
    init = TinyRegression(bn=strategy == "syncbn").state_dict()
    assert not torch.allclose(init["net.0.weight"], rank0["net.0.weight"])
    # the hook saw every optimizer step, on every rank
    assert (
        rank0["hook_log"][:7].tolist() == [0, 1, 2, 3, 4, 5, -1] == rank1["hook_log"][:7].tolist()
    )


def test_rank0_wrote_outputs(torchrun_out):
    for strategy in ("ddp", "fsdp"):
        out = torchrun_out / strategy
        assert (out / "model.safetensors").is_file()
        assert (out / "checkpoints" / "step_0000006.pt").is_file()
        ckpt = torch.load(out / "checkpoints" / "step_0000006.pt", weights_only=True)
        assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
        # the two ranks ran different RNG streams (seed offset per rank)
        assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])


def test_per_process_batch_rule():
    from paperzoo.train.distributed import per_process_batch

    assert per_process_batch(256, 0, 8) == 32
    assert per_process_batch(256, 12, 8) == 12  # an explicit per-process batch wins
    with pytest.raises(ValueError, match=r"data\.batch_size"):
        per_process_batch(256, 0, 3)
