"""Recipes: configs, the paper pipeline end to end on generated mp4 files, the tiny study."""

from __future__ import annotations

import io
import json

import pytest

from paperzoo.core import get_recipe
from paperzoo.core.run import build_config, run_recipe
from paperzoo.mvpl.recipes import paper_1pct_config, paper_config, tiny_config
from paperzoo.mvpl.reproduce import labelled_indices, pseudo_label_log
from paperzoo.train.study import load_study, run_study


def test_paper_configs():
    cfg = paper_config()
    m = cfg.mvpl
    assert (m.model, m.views, m.threshold, m.mu, m.lambda_u) == (
        "mvpl_slow_r50", ("rgb", "tg", "flow"), 0.3, 7, 1.0,
    )  # fmt: skip
    assert (m.label_fraction, paper_1pct_config().mvpl.label_fraction) == (0.1, 0.01)
    assert (cfg.video.num_frames, cfg.video.sampling_rate, cfg.video.train_crop_size) == (8, 8, 224)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.base_batch, cfg.trainer.epochs) == (
        "sgd", 0.1, 64, 196,
    )  # fmt: skip
    assert tiny_config().background == "clutter"


def test_labelled_indices_are_stratified_and_seeded():
    labels = [c for c in range(4) for _ in range(20)]
    a, b, c = (labelled_indices(labels, 0.1, s) for s in (0, 0, 1))
    assert a == b and a != c and len(a) == 8
    assert sorted(labels[i] for i in a) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert labelled_indices(labels, 1.0, 0) == list(range(80))
    assert len(labelled_indices([0] * 5 + [1] * 50, 0.02, 0)) == 2  # a class keeps one video


def test_pseudo_label_log_is_exact_per_epoch(tmp_path):
    rows = [
        {"step": 1, "epoch": 0, "pl_coverage": 0.5, "pl_correct": 0.25, "pl_accuracy": 0.4},
        {"step": 2, "epoch": 0, "pl_coverage": 0.25, "pl_correct": 0.25, "pl_accuracy": 0.6},
        {"step": 3, "epoch": 1, "loss": 1.0},
        {"step": 4, "epoch": 2, "pl_coverage": 0.0, "pl_correct": 0.0, "pl_accuracy": 0.1},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    epoch0, epoch2 = pseudo_label_log(path)
    assert epoch2["epoch"] == 2 and epoch2["precision"] is None  # nothing passed: no precision
    assert epoch0["epoch"] == 0 and epoch0["coverage"] == pytest.approx(37.5)
    assert epoch0["precision"] == pytest.approx(100 * 0.5 / 0.75)
    assert epoch0["accuracy"] == pytest.approx(50.0)


def test_paper_recipe_without_data_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data DIR"):
        run_recipe(get_recipe("mvpl_paper"), out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="--data DIR"):
        run_recipe(get_recipe("mvpl_paper_ucf101"), out_dir=tmp_path)


PAPER_SMALL = [
    "mvpl.model=mvpl_r3d_tiny", "mvpl.tiny_width=8", "mvpl.num_classes=4", "mvpl.mu=2",
    "mvpl.label_fraction=0.5", "video.num_frames=2", "video.sampling_rate=2", "short_side=32",
    "video.train_crop_size=28", "video.test_crop_size=28", "video.test_short_side=32",
    "video.num_ensemble_views=2", "video.num_spatial_crops=3", "video.precise_bn_batches=1",
    "video.eval_batch_size=4", "video.max_bad_fraction=0.2", "global_batch_size=4",
    "trainer.epochs=0", "trainer.max_steps=2", "trainer.checkpoint_every=2",
    "trainer.device=cpu", "trainer.amp=off", "trainer.progress=false", "trainer.tensorboard=false",
    "optim.warmup_epochs=0", "data.num_workers=0",
]  # fmt: skip


def test_paper_recipe_end_to_end_on_generated_videos(tmp_path):
    """The Kinetics recipe on a few real h264 files in the Kinetics list layout, one of them
    corrupt: skipped and counted, flow computed once into the cache, then the multi-view test."""
    from paperzoo.data.synthetic import write_moving_digits

    data = tmp_path / "k400"
    write_moving_digits(
        data, num_videos_per_class=4, num_directions=4, digits=(0,), size=32, num_frames=8,
        val_fraction=0.25, seed=0, background="clutter",
    )  # fmt: skip
    (data / "videos" / "broken.mp4").write_bytes(b"\x00" * 100)
    with open(data / "train.csv", "a") as f:
        f.write("videos/broken.mp4 3\n")
    cache = tmp_path / "flow"
    overrides = [*PAPER_SMALL, f"data.root={data}", f"flow_cache_dir={cache}"]
    with pytest.warns(RuntimeWarning, match=r"skipped 1 of 13 .*broken\.mp4"):
        summary = run_recipe(
            get_recipe("mvpl_paper"), out_dir=tmp_path / "run", overrides=overrides
        )
    extra, m = summary["extra"], summary["metrics"]
    assert summary["steps"] == 2 and extra["train_videos"] == 12
    assert extra["flow_cache"]["computed"] == 12 and extra["flow_cache"]["unreadable"] == 1
    assert extra["num_test_videos"] == 4 and 0.0 <= m["top1"] <= m["top5"] <= 100.0
    assert len(list(cache.rglob("*.npy"))) == 12
    logged = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("pl_coverage" in row for row in logged)
    # The weights the Trainer wrote load back by name (the layout "C" of the README names).
    from paperzoo.core import create_model

    weights = tmp_path / "run" / "model.safetensors"
    net = create_model(
        "mvpl_r3d_tiny", num_classes=4, width=8, dropout=0.5, checkpoint_path=weights
    )
    assert net.views == ("rgb", "tg", "flow")


def test_overrides_are_typed():
    cfg = build_config(get_recipe("mvpl_tiny"), ["mvpl.views=rgb,tg", "trainer.max_steps=7"])
    assert cfg.mvpl.views == ("rgb", "tg") and cfg.trainer.max_steps == 7


TINY_SMALL = [
    "trainer.max_steps=2", "trainer.checkpoint_every=2", "global_batch_size=6", "mvpl.mu=2",
    "moving_digits.num_videos_per_class=10", "moving_digits.digits=0", "mvpl.num_classes=4",
    "mvpl.tiny_width=8", "video.precise_bn_batches=1", "mvpl.label_fraction=0.2",
]  # fmt: skip


def test_tiny_study_declares_the_claims_and_runs(tmp_path):
    recipe = get_recipe("mvpl_tiny")
    study = load_study(recipe)
    assert [a.name for a in study.arms] == ["supervised", "fixmatch_rgb", "mvpl"]
    assert study.seeds == (0, 1, 2)
    assert {(c.metric, c.arm, c.baseline) for c in study.claims} == {
        ("top1", "mvpl", "supervised"), ("top1", "mvpl", "fixmatch_rgb"),
    }  # fmt: skip
    summary = run_study(
        recipe, out_dir=tmp_path, overrides=TINY_SMALL, seeds=[0], stream=io.StringIO()
    )
    assert all(c["holds"] in (True, False) for c in summary["claims"])
    cell = json.loads((tmp_path / "mvpl" / "seed0" / "summary.json").read_text())
    assert cell["extra"]["views"] == ["rgb", "tg", "flow"]
    assert "pseudo_labels_per_epoch" in cell["extra"] and "pl_coverage" in cell["metrics"]
    assert cell["extra"]["labelled_videos"] == 8  # round(20% of 8 training videos) x 4 classes
    sup = json.loads((tmp_path / "supervised" / "seed0" / "summary.json").read_text())
    assert sup["extra"]["views"] == ["rgb"] and sup["extra"]["semi"] is False


@pytest.mark.slow
def test_tiny_study_three_seeds(tmp_path):
    """The README's tiny result (the verdict is reported as measured; this checks it ran)."""
    summary = run_study(get_recipe("mvpl_tiny"), out_dir=tmp_path, stream=io.StringIO())
    assert len(summary["claims"]) == 2


@pytest.mark.slow
def test_paper_recipe_under_torchrun_two_processes(tmp_path):
    """The Kinetics recipe relaunched under torchrun (2 CPU processes, DDP on gloo): the flow
    cache is filled by both ranks, every rank trains, the multi-view test is all-reduced."""
    import os
    import subprocess
    import sys

    from paperzoo.data.synthetic import write_moving_digits

    data = tmp_path / "k400"
    write_moving_digits(
        data, num_videos_per_class=4, num_directions=4, digits=(0,), size=32, num_frames=8,
        val_fraction=0.25, seed=0, background="clutter",
    )  # fmt: skip
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "paperzoo.core.cli", "reproduce", "mvpl", "--recipe", "paper",
           "--nproc", "2", "--out", str(out), "--data", str(data)]  # fmt: skip
    for o in [*PAPER_SMALL, "video.max_bad_fraction=0.01", f"flow_cache_dir={tmp_path / 'flow'}"]:
        cmd += ["--set", o]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2
    assert summary["extra"]["train_videos"] == 12 and summary["extra"]["num_test_videos"] == 4
    assert len(list((tmp_path / "flow").rglob("*.npy"))) == 12
