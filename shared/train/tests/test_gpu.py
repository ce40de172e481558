"""CUDA-only checks: bf16 autocast by default, pinned transfers, compile with inductor."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_methods import RegressionData, TinyRegression, make_ctx, tiny_configs

from paperzoo.train import Trainer


@pytest.mark.gpu
def test_cuda_defaults_to_bf16_and_resumes_exactly(tmp_path):
    trainer_cfg, optim_cfg = tiny_configs(max_steps=6, checkpoint_every=3, device="auto")
    torch.manual_seed(0)
    straight = Trainer(
        TinyRegression(bn=True),
        RegressionData(),
        make_ctx(tmp_path / "a"),
        trainer_cfg,
        optim_cfg,
        batch_size=8,
    )
    state = straight.fit()
    assert straight.device.type == "cuda" and straight.model.seen_dtype == torch.bfloat16
    assert math.isfinite(state.metrics["loss"])
    crashing = TinyRegression(bn=True)
    crashing.fail_at_step = 4
    with pytest.raises(RuntimeError):
        Trainer(
            crashing,
            RegressionData(),
            make_ctx(tmp_path / "b"),
            trainer_cfg,
            optim_cfg,
            batch_size=8,
        ).fit()
    resumed = Trainer(
        TinyRegression(bn=True),
        RegressionData(),
        make_ctx(tmp_path / "b", resume=True),
        trainer_cfg,
        optim_cfg,
        batch_size=8,
    )
    resumed.fit()
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.gpu
def test_cuda_inductor_compile_runs(tmp_path):
    trainer_cfg, optim_cfg = tiny_configs(max_steps=3, device="cuda", compile=True)
    state = Trainer(
        TinyRegression(), RegressionData(), make_ctx(tmp_path), trainer_cfg, optim_cfg, batch_size=8
    ).fit()
    assert state.step == 3 and math.isfinite(state.metrics["loss"])
