"""End to end through `paperzoo reproduce lightfusion`: both arms of the tiny study for a few
steps (one seed), the study's verdicts and metrics; the judged prompt accuracy on real digits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PAPERZOO = [sys.executable, "-m", "paperzoo.core.cli"]
QUICK = [
    "lm.max_steps=10", "dit.max_steps=10", "fusion.max_steps=10", "trainer.checkpoint_every=10",
    "trainer.log_every=5", "trainer.progress=false", "trainer.device=cpu", "eval.num_samples=20",
    "eval.batch_size=20", "eval.grid=10", "sample.steps=3", "lm.batch_size=16",
    "dit.batch_size=16", "fusion.batch_size=16",
]  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([*PAPERZOO, *args], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-5000:]}"
    return out


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def test_tiny_study_runs_both_arms_and_decides(tmp_path: Path):
    _cli("reproduce", "lightfusion", "--out", str(tmp_path), "--seeds", "0", *_sets(QUICK))
    study = json.loads((tmp_path / "summary.json").read_text())
    assert set(study["arms"]) == {"dit_alone", "fused"}
    assert len(study["claims"]) == 2 and all("holds" in c for c in study["claims"])
    fused = study["arms"]["fused"]["metrics"]
    for key in ("digit_fd", "prompt_acc", "prompt_acc_lm", "prompt_acc_direct", "lm_answer_acc"):
        assert key in fused
    cell = tmp_path / "fused" / "seed0"
    assert (cell / "samples.png").is_file() and (cell / "train" / "model_ema.safetensors").is_file()
    cfg = json.loads((cell / "config.json").read_text())["config"]
    assert cfg["timestep_shift"] == 1.0 and cfg["arm"] == "fused"
    # Both arms start from one pretrained DiT per seed, kept in the study's shared folder.
    assert len(list((tmp_path / "_shared").glob("dit_pretrain_*/seed0/done.json"))) == 1


def test_judged_accuracy_on_real_test_digits_is_high_and_on_noise_is_low():
    from paperzoo.data.images import load_mnist_sample
    from paperzoo.lightfusion.reproduce import judge_prompts
    from paperzoo.train.digit_features import digit_validation_split

    images, labels = load_mnist_sample()
    _, test = digit_validation_split()
    x = images[test].float().div(127.5).sub(1).unsqueeze(1)
    assert judge_prompts(x, labels[test]).float().mean() > 0.95
    assert judge_prompts(x, (labels[test] + 1) % 10).float().mean() < 0.05
