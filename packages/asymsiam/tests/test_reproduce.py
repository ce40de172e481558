"""End to end through `paperzoo reproduce asymsiam`: every design runs a few steps, AsymBN under a
real 2-process torchrun (gloo), and the study's claims are declared. The full tiny study is in
test_reproduction_slow.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from paperzoo.asymsiam.recipes import DESIGNS, tiny_study
from paperzoo.core import create_model

PAPERZOO = [sys.executable, "-m", "paperzoo.core.cli"]
SHORT = [
    "global_batch_size=16", "moco.queue_size=64", "trainer.max_steps=3",
    "trainer.checkpoint_every=3", "trainer.log_every=1", "trainer.progress=false",
    "trainer.tensorboard=false", "data.num_workers=0", "eval.knn=false",
    "asym.variance_images=32", "asym.variance_draws=2",
]  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([*PAPERZOO, *args], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-5000:]}"
    return out


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def test_study_declares_every_design_against_the_baseline():
    study = tiny_study()
    assert [a.name for a in study.arms] == list(DESIGNS)
    assert study.seeds == (0, 1, 2)
    pairs = {(c.arm, c.metric) for c in study.claims}
    for design in DESIGNS:
        if design != "baseline":
            assert {(design, "linear_top1"), (design, "variance_ratio")} <= pairs
    assert all(c.baseline == "baseline" for c in study.claims)


@pytest.mark.parametrize("design", ["multicrop", "scalemix", "asym_aug", "mean_enc"])
def test_each_design_trains_and_reports_probe_and_variance(tmp_path, design):
    _cli("reproduce", "asymsiam", "--out", str(tmp_path), "--cell", f"{design}/0", *_sets(SHORT))
    summary = json.loads((tmp_path / design / "seed0" / "summary.json").read_text())
    m = summary["metrics"]
    assert summary["steps"] == 3
    assert 0.0 <= m["linear_top1"] <= 100.0
    assert m["source_variance"] > 0 and m["target_variance"] > 0
    assert m["variance_ratio"] == pytest.approx(m["source_variance"] / m["target_variance"])
    rows = [
        json.loads(r)
        for r in (tmp_path / design / "seed0" / "metrics.jsonl").read_text().splitlines()
    ]
    losses = [r for r in rows if "loss" in r]
    assert len(losses) == 3
    # MultiCrop's loss has the small-crop term; the others do not.
    assert ("small_crop_loss" in losses[0]) == (design == "multicrop")


def test_asym_bn_under_torchrun_with_two_gloo_processes(tmp_path):
    first = _cli(
        "reproduce", "asymsiam", "--nproc", "2", "--out", str(tmp_path), "--cell", "asym_bn/0",
        *_sets([*SHORT, "moco.bn_splits=1"]),
    )  # fmt: skip
    assert "torch.distributed.run" in first.stderr  # really relaunched under torchrun
    cell = tmp_path / "asym_bn" / "seed0"
    summary = json.loads((cell / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    assert summary["extra"]["per_process_batch"] == 8
    assert summary["metrics"]["target_variance"] > 0
    # The trained weights load back into the model (SyncBN kept the state-dict keys), and every
    # step enqueued the keys of both ranks (2 x 8).
    model = create_model(
        "asymsiam_resnet10_narrow", queue_size=64, checkpoint_path=cell / "model.safetensors"
    )
    assert int(model.queue_ptr) == (3 * 16) % 64
    assert int(model.encoder_k.fc[1].num_batches_tracked) == 3  # one synced BN call per step
