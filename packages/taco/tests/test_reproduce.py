"""End to end through `paperzoo reproduce taco`: every arm of the tiny study for a few steps, and
the paper pipeline (Kinetics-style pre-training list, UCF-101 and HMDB-51 fine-tune folders of
real mp4 files) alone and under a real 2-process torchrun (gloo). The full tiny study is in
test_reproduction_slow.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from paperzoo.data.synthetic import write_moving_digits
from paperzoo.taco.recipes import TINY_ARMS, tiny_study

PAPERZOO = [sys.executable, "-m", "paperzoo.core.cli"]
QUICK = [
    "global_batch_size=8", "moco.queue_size=32", "trainer.max_steps=3",
    "trainer.checkpoint_every=3", "trainer.log_every=1", "trainer.progress=false",
    "trainer.tensorboard=false", "data.num_workers=0", "finetune.batch_size=4",
    "finetune.max_steps=2", "finetune.num_workers=0",
]  # fmt: skip
TINY_DATA = [
    "moving_digits.num_videos_per_class=5", "moving_digits.digits=[0,1]",
    "moving_digits.val_fraction=0.2", "moving_digits.test_fraction=0.2",
    "finetune.label_fraction=0.5",
]  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([*PAPERZOO, *args], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-5000:]}"
    return out


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def _rows(path: Path) -> list[dict]:
    return [json.loads(r) for r in path.read_text().splitlines()]


def test_study_declares_the_papers_two_claims_on_both_protocols():
    study = tiny_study()
    assert [a.name for a in study.arms] == list(TINY_ARMS)
    assert study.seeds == (0, 1, 2)
    claims = {(c.arm, c.baseline, c.metric, c.rule) for c in study.claims}
    for metric in ("linear_top1", "finetune_top1"):
        assert ("temporal_aug", "moco", metric, "not_better") in claims
        assert ("taco", "moco", metric, "better_mean") in claims


def test_every_arm_trains_what_it_says_and_reports_both_evaluations(tmp_path):
    """The whole study at one seed and a few steps: one cell per arm, then the claims."""
    _cli("reproduce", "taco", "--out", str(tmp_path), "--seeds", "0", *_sets(QUICK + TINY_DATA))
    study = json.loads((tmp_path / "summary.json").read_text())
    assert len(study["claims"]) == 4
    heads = {"rotation_loss", "shuffle_loss", "reverse_loss", "speed_loss"}
    for arm in TINY_ARMS:
        cell = tmp_path / arm / "seed0"
        summary = json.loads((cell / "summary.json").read_text())
        m = summary["metrics"]
        assert summary["steps"] == 3
        for key in ("linear_top1", "knn_top1", "finetune_top1", "linear_direction_acc"):
            assert 0.0 <= m[key] <= 100.0
        assert m["labelled_videos"] == 2 * 4 * 2  # half the 2 digits x 4 directions x 2 videos
        assert ("random_init_linear_top1" in m) == (arm == "moco")  # the floor, once
        row = _rows(cell / "metrics.jsonl")[-1]
        assert heads <= set(row) if arm in ("taco", "heads_only") else not heads & set(row), arm
        assert ("contrast_loss" in row) == (arm != "heads_only")
        assert (cell / "finetune" / "metrics.jsonl").is_file()  # the fine-tune ran in the Trainer
    cfg = json.loads((tmp_path / "moco" / "seed0" / "config.json").read_text())
    taco = cfg["config"]["taco"]
    assert taco["transformations"] == [] and taco["heads"] is False


def _ucf_layout(tmp_path: Path) -> tuple[Path, Path]:
    """Real mp4 files as a Kinetics list (pre-training) and as UCF-101 split 1 (fine-tune)."""
    kinetics = tmp_path / "k400"
    write_moving_digits(kinetics, num_videos_per_class=3, num_directions=2, digits=(0, 1),
                        num_frames=16, size=32, val_fraction=0.34)  # fmt: skip
    ucf = tmp_path / "ucf"
    classes = json.loads((kinetics / "classes.json").read_text())
    (ucf / "classInd.txt").parent.mkdir(parents=True)
    (ucf / "classInd.txt").write_text(
        "".join(f"{i + 1} {name}\n" for i, name in enumerate(classes.values()))
    )
    train_lines, test_lines = [], []
    for split, lines in (("train", train_lines), ("val", test_lines)):
        for line in (kinetics / f"{split}.csv").read_text().splitlines():
            rel, label = line.split()
            name = classes[label]
            (ucf / name).mkdir(exist_ok=True)
            target = ucf / name / Path(rel).name
            target.symlink_to(kinetics / rel)
            lines.append(
                f"{name}/{target.name}" + (f" {int(label) + 1}" if split == "train" else "")
            )
    (ucf / "trainlist01.txt").write_text("\n".join(train_lines) + "\n")
    (ucf / "testlist01.txt").write_text("\n".join(test_lines) + "\n")
    return kinetics, ucf


PAPER_SMALL = [
    "model=taco_r3d_narrow", "global_batch_size=4", "moco.dim=64", "moco.queue_size=16",
    "video.num_frames=4", "video.sampling_rate=1", "video.fps=8", "video.crop_size=32",
    "video.short_side=32", "video.train_scales=[32,40]", "taco.speeds=[1,2]",
    "trainer.max_steps=2", "trainer.checkpoint_every=2", "trainer.log_every=1",
    "trainer.progress=false", "trainer.tensorboard=false", "trainer.amp=off",
    "trainer.device=cpu", "data.num_workers=0", "finetune.max_steps=2", "finetune.batch_size=4",
    "finetune.num_workers=0", "finetune.num_clips=2", "finetune.num_crops=3",
]  # fmt: skip


def test_paper_pipeline_pretrains_on_a_kinetics_list_and_fine_tunes_on_ucf101(tmp_path):
    kinetics, ucf = _ucf_layout(tmp_path)
    out = tmp_path / "run"
    _cli("reproduce", "taco", "--recipe", "paper", "--data", str(kinetics), "--out", str(out),
         *_sets([*PAPER_SMALL, f"finetune.root={ucf}"]))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2
    assert 0.0 <= summary["metrics"]["finetune_top1"] <= 100.0
    assert summary["metrics"]["finetune_top5"] == 100.0  # 4 classes: every label is in the top 5
    row = _rows(out / "metrics.jsonl")[-1]
    assert {"contrast_loss", "rotation_loss", "speed_loss"} <= set(row)


def test_paper_pipeline_under_torchrun_with_two_processes(tmp_path):
    kinetics, ucf = _ucf_layout(tmp_path)
    out = tmp_path / "run"
    _cli("reproduce", "taco", "--recipe", "paper", "--data", str(kinetics), "--out", str(out),
         "--nproc", "2", *_sets([*PAPER_SMALL, f"finetune.root={ucf}"]))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2
    assert summary["extra"]["per_process_batch"] == 2
    assert 0.0 <= summary["metrics"]["finetune_top1"] <= 100.0


def test_a_missing_fine_tune_folder_is_a_clear_error(tmp_path):
    kinetics, _ = _ucf_layout(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [*PAPERZOO, "reproduce", "taco", "--recipe", "paper", "--data", str(kinetics),
         "--out", str(tmp_path / "run"), *_sets(PAPER_SMALL)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert out.returncode != 0
    assert "finetune.root=PATH" in out.stderr
