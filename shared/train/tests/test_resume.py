"""Exact resume: a run killed with SIGKILL (or crashing) and resumed ends bit-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TESTS_DIR, subprocess_env
from safetensors.torch import load_file
from tiny_methods import RegressionData, TinyRegression, make_ctx, tiny_configs

from paperzoo.train import Trainer
from paperzoo.train.checkpointing import list_checkpoints

SCRIPT = str(TESTS_DIR / "scripts" / "train_for_resume.py")


def _start(out: Path, num_workers: int, *extra: str, sleep: float = 0.0) -> subprocess.Popen:
    env = subprocess_env()
    env["PZ_STEP_SLEEP"] = str(sleep)
    return subprocess.Popen(
        [sys.executable, SCRIPT, str(out), str(num_workers), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, output[-4000:]
    return output


def _assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"


def test_sigkill_then_resume_is_bitwise_identical(tmp_path):
    # Two DataLoader workers, dropout, BN and random augmentation from torch/numpy/python RNGs:
    # everything that could make a resumed run drift. (num_workers=0 is covered in-process below.)
    num_workers = 2
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight = _start(straight_dir, num_workers)
    victim = _start(killed_dir, num_workers, sleep=0.25)
    # Kill once the step-6 checkpoint exists: mid-run, between checkpoints, at no chosen point.
    deadline = time.monotonic() + 180
    while not (killed_dir / "checkpoints" / "step_0000006.pt").exists():
        assert victim.poll() is None, victim.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "the run never wrote its step-6 checkpoint"
        time.sleep(0.05)
    time.sleep(0.4)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_dir / "model.safetensors").exists(), "the victim finished before the kill"
    latest = list_checkpoints(killed_dir / "checkpoints")[-1]
    assert int(latest.stem.split("_")[1]) < 16

    output = _finish(_start(killed_dir, num_workers, "resume"))
    assert f"resumed_from={latest}" in output, output
    _finish(straight)
    _assert_bitwise_equal(
        load_file(str(straight_dir / "model.safetensors")),
        load_file(str(killed_dir / "model.safetensors")),
    )
    _assert_bitwise_equal(
        load_file(str(straight_dir / "model_ema.safetensors")),
        load_file(str(killed_dir / "model_ema.safetensors")),
    )
    # the redone part of the log replaced the killed run's lines: one record per log step
    steps = [line for line in (killed_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 16 // 2


def test_crash_then_resume_in_process(tmp_path):
    """Same guarantee without a subprocess: an exception at step 7, resume from step 6."""
    trainer_cfg, optim_cfg = tiny_configs(max_steps=10, checkpoint_every=3)
    data = RegressionData(n=40, augment=True)

    torch.manual_seed(0)
    straight = Trainer(
        TinyRegression(bn=True, dropout=0.2), data, make_ctx(tmp_path / "a"), trainer_cfg, optim_cfg,
        batch_size=6,
    )  # fmt: skip
    straight.fit()

    torch.manual_seed(0)
    crashing = TinyRegression(bn=True, dropout=0.2)
    crashing.fail_at_step = 7
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(
            crashing, data, make_ctx(tmp_path / "b"), trainer_cfg, optim_cfg, batch_size=6
        ).fit()
    torch.manual_seed(99)
    resumed = Trainer(
        TinyRegression(bn=True, dropout=0.2), data, make_ctx(tmp_path / "b", resume=True),
        trainer_cfg, optim_cfg, batch_size=6,
    )  # fmt: skip
    state = resumed.fit()
    assert state.resumed_from is not None and state.resumed_from.endswith("step_0000006.pt")
    _assert_bitwise_equal(straight.model.state_dict(), resumed.model.state_dict())
    _assert_bitwise_equal(
        straight.optimizer.state_dict()["state"][0], resumed.optimizer.state_dict()["state"][0]
    )
