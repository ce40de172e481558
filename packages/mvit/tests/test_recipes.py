"""Recipes end to end on real (small) data: the tiny claim runner, and the paper runner's whole
pipeline (decode, augment, mixup, train, multi-view test) on moving-digits videos laid out as a
Kinetics folder."""

from __future__ import annotations

import json

import pytest

from paperzoo.core import get_recipe
from paperzoo.core.run import build_config, run_recipe

TINY_DATA = [
    "data.videos_per_class=3",
    "data.batch_size=4",
    "trainer.max_steps=2",
    "optim.warmup_steps=1",
]


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    """A Kinetics-style folder (train.csv, val.csv, mp4 videos) of moving digits."""
    from paperzoo.data.synthetic import write_moving_digits

    root = tmp_path_factory.mktemp("moving_digits")
    write_moving_digits(root, num_videos_per_class=3, num_frames=8, size=32, speed=3, seed=0)
    return root


def test_tiny_recipe_runs_both_models(tmp_path, digits_root):
    recipe = get_recipe("mvit_tiny")
    overrides = [*TINY_DATA, f"data.root={digits_root}", "seeds=[0]"]
    summary = run_recipe(recipe, out_dir=tmp_path, overrides=overrides)
    metrics = summary["metrics"]
    for model in ("mvit", "vit"):
        assert 0.0 <= metrics[f"{model}_top1_seed0"] <= 100.0
        assert metrics[f"{model}_top1_mean"] == metrics[f"{model}_top1_seed0"]
    # The baseline is the closest width whose FLOPs are not below the MViT's.
    assert metrics["vit_gmacs"] >= metrics["mvit_gmacs"]
    assert metrics["claim_holds"] in (0.0, 1.0)
    claim = json.loads((tmp_path / "tiny_claim.json").read_text())
    assert claim["per_seed_top1"].keys() == {"mvit_tiny_video", "vit_tiny_video"}
    for run in ("mvit_tiny_video_seed0", "vit_tiny_video_seed0"):
        assert (tmp_path / run / "model.safetensors").is_file()


def test_paper_recipe_defaults_are_the_official_ones():
    cfg = build_config(get_recipe("mvit_paper"))
    assert cfg.model.name == "mvit_base_16x4" and cfg.model.drop_path_rate == 0.2
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("adamw", 1e-4, 0.05)
    assert (cfg.trainer.epochs, cfg.optim.warmup_epochs, cfg.optim.min_lr) == (200, 30.0, 1e-6)
    assert cfg.trainer.clip_grad_norm == 1.0
    assert (cfg.data.num_frames, cfg.data.sampling_rate, cfg.data.train_crop_size) == (16, 4, 224)
    assert (cfg.mixup.mixup_alpha, cfg.mixup.cutmix_alpha, cfg.mixup.label_smoothing) == (
        0.8,
        1.0,
        0.1,
    )
    assert (cfg.test.num_clips, cfg.test.num_crops) == (5, 1)


def test_paper_recipe_without_data_says_what_to_pass(tmp_path):
    with pytest.raises(ValueError, match="--data /path/to/kinetics400"):
        run_recipe(get_recipe("mvit_paper"), out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"train\.csv"):
        run_recipe(get_recipe("mvit_paper"), out_dir=tmp_path, overrides=[f"data.root={tmp_path}"])


def test_paper_pipeline_on_a_kinetics_style_folder(tmp_path, digits_root):
    """The paper runner, shrunk to the tiny model and 2 steps: every stage of it runs."""
    overrides = [
        f"data.root={digits_root}",
        "model.name=mvit_tiny_video",
        "model.num_classes=40",
        "data.num_frames=8",
        "data.sampling_rate=1",
        "data.target_fps=8",
        "data.train_crop_size=32",
        "data.test_crop_size=32",
        "data.test_short_side=32",
        "data.batch_size=2",
        "data.num_workers=0",
        "trainer.epochs=0",
        "trainer.max_steps=2",
        "trainer.progress=false",
        "trainer.tensorboard=false",
        "trainer.amp=off",
        "optim.warmup_epochs=0",
        "optim.warmup_steps=1",
        "test.num_clips=2",
        "test.batch_size=8",
    ]
    summary = run_recipe(get_recipe("mvit_paper"), out_dir=tmp_path, overrides=overrides)
    assert summary["steps"] == 2
    assert 0.0 <= summary["metrics"]["top1"] <= summary["metrics"]["top5"] <= 100.0
    assert (tmp_path / "model.safetensors").is_file()


# The outcome of the full tiny run documented in the README (3 seeds, default config): the
# MViT did NOT beat the single-scale ViT at this scale. If a change flips it, update the README.
DOCUMENTED_CLAIM_HOLDS = 0.0


@pytest.mark.slow
def test_tiny_claim_three_seeds(tmp_path):
    """The full tiny recipe (3 seeds x 2 models, ~10-35 min on 2 cores)."""
    summary = run_recipe(get_recipe("mvit_tiny"), out_dir=tmp_path)
    metrics = summary["metrics"]
    chance = 100.0 / 40
    for model in ("mvit", "vit"):
        assert [metrics[f"{model}_top1_seed{s}"] for s in (0, 1, 2)]
        assert metrics[f"{model}_top1_mean"] > 2 * chance, f"{model} did not learn"
    assert metrics["claim_holds"] == DOCUMENTED_CLAIM_HOLDS, (
        f"the tiny claim outcome changed ({metrics}); update the README's results"
    )
