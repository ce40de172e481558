"""End to end: the tiny study through `paperzoo reproduce mocov2`, one cell under 2 processes
with resume, an exact resume of a single run, and a loss that drops.

Runs are shortened with --set overrides (a handful of steps, small batch and queue); the full
tiny study is in test_reproduction_slow.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from paperzoo.core import create_model, get_recipe
from paperzoo.core.run import run_recipe
from paperzoo.mocov2.recipes import TINY_ARMS

PAPERZOO = [sys.executable, "-m", "paperzoo.core.cli"]

# A short tiny run: batch 32 in 2 BN groups, queue of 4 batches, no progress bar.
SHORT = [
    "global_batch_size=32",
    "moco.bn_splits=2",
    "moco.queue_size=128",
    "trainer.log_every=1",
    "trainer.progress=false",
    "trainer.tensorboard=false",
    "data.num_workers=0",
]
CLAIM_FIELDS = {"statement", "holds", "metric", "per_seed", "mean", "std", "delta"}


def _env() -> dict[str, str]:
    # One intra-op thread per process: two ranks on two cores must not oversubscribe them.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [*PAPERZOO, *args], capture_output=True, text=True, env=_env(), timeout=timeout
    )
    assert out.returncode == 0, f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-5000:]}"
    return out


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def _losses(out: Path) -> list[float]:
    rows = [
        json.loads(line)
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return [r["loss"] for r in rows if "loss" in r]


def test_tiny_study_runs_every_arm_and_decides_the_declared_claims(tmp_path):
    out = tmp_path / "study"
    proc = _cli(
        "reproduce", "mocov2", "--out", str(out), "--seeds", "0,1",
        *_sets([*SHORT, "trainer.max_steps=3"]), timeout=1200,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and set(summary["arms"]) == set(TINY_ARMS)
    assert (out / "study.png").is_file() and "v1_augplus" in proc.stdout
    # Every claim of the study, decided by code, with the declared fields.
    claims = {(c["metric"], c["arm"], c["baseline"]): c for c in summary["claims"]}
    assert {("linear_top1", "v1_mlp", "v1"), ("linear_top1", "v1_augplus", "v1"),
            ("linear_top1", "v2", "v1"), ("knn_top1", "v2", "v1")} <= set(claims)  # fmt: skip
    for claim in summary["claims"]:
        assert set(claim) >= CLAIM_FIELDS, claim
        assert isinstance(claim["holds"], bool) and set(claim["per_seed"]) == {"0", "1"}
    # The arms' configs differ as declared: head, augmentation, schedule (T: 0.07 in all).
    declared = {
        "v1": (False, False, "step"),
        "v1_mlp": (True, False, "step"),
        "v1_augplus": (False, True, "step"),
        "v2": (True, True, "cosine"),
    }
    for arm, (mlp, aug_plus, schedule) in declared.items():
        for seed in (0, 1):
            cfg = json.loads((out / arm / f"seed{seed}" / "config.json").read_text())["config"]
            got = (cfg["moco"]["mlp"], cfg["moco"]["aug_plus"], cfg["optim"]["schedule"])
            assert got == (mlp, aug_plus, schedule) and cfg["moco"]["temperature"] == 0.07
            assert cfg["seed"] == seed and cfg["trainer"]["max_steps"] == 3  # --set reaches all
    # The random-init floor is measured once per seed, in the v1 cells.
    v1 = summary["arms"]["v1"]["metrics"]
    assert 0.0 <= v1["random_init_linear_top1"]["mean"] <= 100.0
    assert "random_init_linear_top1" not in summary["arms"]["v2"]["metrics"]
    # A cell's model.safetensors is the whole MoCo module (the v1 arm: linear head).
    model = create_model(
        "mocov2_resnet10_narrow", queue_size=128, mlp=False,
        checkpoint_path=out / "v1" / "seed0" / "model.safetensors",
    )  # fmt: skip
    assert int(model.queue_ptr) == (3 * 32) % 128


def test_resume_continues_exactly_and_the_loss_drops_on_real_data(tmp_path):
    # Constant lr so that a 12-step run resumed to 24 steps follows the same schedule as a
    # straight 24-step run; the weights (encoders, queue, pointer) must then be bitwise equal.
    common = [*SHORT, "optim.schedule=constant", "optim.lr=0.05", "eval.enabled=false"]
    recipe = get_recipe("mocov2_tiny")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_recipe(
        recipe,
        out_dir=straight,
        overrides=[*common, "trainer.max_steps=24", "trainer.checkpoint_every=12"],
    )
    run_recipe(
        recipe,
        out_dir=resumed,
        overrides=[*common, "trainer.max_steps=12", "trainer.checkpoint_every=12"],
    )
    summary = run_recipe(
        recipe, out_dir=resumed, overrides=[*common, "trainer.max_steps=24", "trainer.checkpoint_every=12"],
        resume=True,
    )  # fmt: skip
    assert summary["steps"] == 24
    from safetensors.torch import load_file

    a = load_file(str(straight / "model.safetensors"))
    b = load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys() and "queue" in a and "encoder_k.fc.2.weight" in a
    assert all(torch.equal(a[k], b[k]) for k in a)

    # Training signal on real MNIST: once the queue holds real keys (after 4 steps), the InfoNCE
    # loss falls. Compare early and late windows of the straight run.
    losses = _losses(straight)
    assert len(losses) == 24
    early, late = sum(losses[4:10]) / 6, sum(losses[18:24]) / 6
    assert late < early - 0.08, losses


def test_one_cell_with_two_processes_resumes_from_its_checkpoint(tmp_path):
    out = tmp_path / "ddp"
    cell = out / "v2" / "seed0"
    sets = _sets([*SHORT, "trainer.checkpoint_every=2"])
    first = _cli(
        "reproduce", "mocov2", "--nproc", "2", "--out", str(out), "--cell", "v2/0", *sets,
        "--set", "trainer.max_steps=2",
    )  # fmt: skip
    assert "torch.distributed.run" in first.stderr  # really relaunched under torchrun
    summary = json.loads((cell / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2
    assert summary["extra"]["per_process_batch"] == 16
    assert 0.0 <= summary["metrics"]["linear_top1"] <= 100.0
    # Make it a half-finished cell of a 4-step run: what a kill after the step-2 checkpoint
    # leaves (no summary.json; config.json goes too, since max_steps changes).
    (cell / "summary.json").unlink()
    (cell / "config.json").unlink()
    _cli(
        "reproduce", "mocov2", "--nproc", "2", "--out", str(out), "--cell", "v2/0", *sets,
        "--set", "trainer.max_steps=4", "--set", "eval.enabled=false", "--resume",
    )  # fmt: skip
    summary = json.loads((cell / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 4
    rows = [json.loads(r) for r in (cell / "metrics.jsonl").read_text().splitlines() if r.strip()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # 1-2 were not run again
    model = create_model(
        "mocov2_resnet10_narrow", queue_size=128, checkpoint_path=cell / "model.safetensors"
    )
    # 4 steps of a global batch of 32 (2 ranks x 16): every rank enqueued all 32 keys per step.
    assert int(model.queue_ptr) == (4 * 32) % 128


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["data.dataset=cifar"], r"data\.dataset"),
        (["moco.bn_splits=3"], "bn_splits"),
        (["eval.split=train"], "eval.split"),
    ],
)
def test_bad_tiny_config_fails_before_training(tmp_path, overrides, match):
    from paperzoo.core.config import apply_overrides
    from paperzoo.core.run import RunContext
    from paperzoo.mocov2.recipes import tiny_config
    from paperzoo.mocov2.reproduce import run

    with pytest.raises(ValueError, match=match):
        cfg = apply_overrides(tiny_config(), overrides)
        run(cfg, RunContext(out_dir=tmp_path, recipe=get_recipe("mocov2_tiny")))
    assert not (tmp_path / "checkpoints").exists()


def _image_folder(root: Path, per_class: int = 4) -> None:
    """root/{train,val}/<class>/*.png of real encoded PNGs (two classes: dark and bright)."""
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for c, name in enumerate(("n0001", "n0002")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                base = 60 + 120 * c
                img = (torch.rand(3, 40, 40, generator=g) * 60 + base).to(torch.uint8)
                write_png(img, str(folder / f"{i}.png"))


def test_paper_recipe_path_on_an_image_folder_with_a_corrupt_file(tmp_path):
    """The ImageNet code path (ImageFolder, aug+, main_lincls through the Trainer) at toy scale.

    One undecodable file in train/ is skipped and counted in summary.json.
    """
    data = tmp_path / "imagenet"
    _image_folder(data)
    (data / "train" / "n0001" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    overrides = [
        "model=mocov2_resnet10_narrow",
        "global_batch_size=4",
        "moco.queue_size=16",
        "data.image_size=32",
        "data.num_workers=0",
        "trainer.max_steps=2",
        "trainer.checkpoint_every=0",
        "trainer.progress=false",
        "trainer.tensorboard=false",
        "eval.linear_epochs=1",  # one epoch each: see the report on per-epoch skip counts
        "eval.linear_batch_size=4",
        "eval.batch_size=4",
        "max_bad_image_fraction=0.2",
    ]
    summary = run_recipe(
        get_recipe("mocov2_paper"),
        out_dir=tmp_path / "out",
        overrides=[*overrides, f"data.root={data}"],
    )
    assert summary["steps"] == 2
    assert 0.0 <= summary["metrics"]["linear_top1"] <= 100.0
    assert summary["extra"]["skipped_files"]["pretrain"] >= 1
    assert (tmp_path / "out" / "linear_eval" / "model.safetensors").is_file()
    # With no tolerance for bad files, the same folder is a clear error naming the file.
    from paperzoo.data import TooManyBadFilesError

    with pytest.raises(TooManyBadFilesError, match=r"broken\.png"):
        run_recipe(
            get_recipe("mocov2_paper"), out_dir=tmp_path / "strict",
            overrides=[*overrides, f"data.root={data}", "max_bad_image_fraction=0.0"],
        )  # fmt: skip
