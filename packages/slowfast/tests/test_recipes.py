import io
import json

import pytest

from paperzoo.core import get_recipe
from paperzoo.core.run import run_recipe
from paperzoo.train.study import load_study, run_study

QUIET = ["trainer.progress=false", "trainer.tensorboard=false", "trainer.device=cpu"]


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    """A small Kinetics-style video folder (train.csv / val.csv of real mp4 files)."""
    from paperzoo.data.synthetic import write_moving_digits

    root = tmp_path_factory.mktemp("moving_digits")
    write_moving_digits(
        root, num_videos_per_class=3, num_directions=2, digits=(0, 1), val_fraction=0.34, seed=0
    )
    return root


def test_paper_recipe_needs_data(tmp_path):
    recipe = get_recipe("slowfast_paper")
    with pytest.raises(FileNotFoundError, match="--data"):
        run_recipe(recipe, out_dir=tmp_path / "a", overrides=QUIET)
    with pytest.raises(FileNotFoundError, match=r"train\.csv"):
        run_recipe(recipe, out_dir=tmp_path / "b", overrides=[*QUIET, f"data.root={tmp_path}"])


def test_paper_config_is_the_official_one():
    from paperzoo.slowfast.recipes import paper_config

    cfg = paper_config()
    assert (cfg.global_batch_size, cfg.optim.lr, cfg.optim.base_batch) == (64, 0.1, 64)
    assert (cfg.trainer.epochs, cfg.optim.warmup_epochs, cfg.optim.schedule) == (
        196,
        34.0,
        "cosine",
    )
    assert (cfg.optim.weight_decay, cfg.slowfast.norm_weight_decay, cfg.slowfast.dropout) == (
        1e-4,
        0.0,
        0.5,
    )
    assert (cfg.video.num_frames, cfg.video.sampling_rate, cfg.video.train_crop_size) == (
        32,
        2,
        224,
    )
    assert (
        cfg.video.num_ensemble_views,
        cfg.video.num_spatial_crops,
        cfg.video.test_crop_size,
    ) == (10, 3, 256)


def test_paper_runner_on_kinetics_style_lists(tmp_path, digits_dir):
    """The paper pipeline (random clips, jitter/crop/flip, precise BN, 2 clips x 3 crops test)
    at toy scale on real mp4 files."""
    overrides = [
        *QUIET, f"data.root={digits_dir}", "slowfast.model=slowfast_tiny", "slowfast.num_classes=0",
        "video.num_frames=8", "video.sampling_rate=1", "video.fps=8", "video.train_crop_size=32",
        "video.train_jitter_scales=36,44", "video.test_crop_size=32", "video.num_ensemble_views=2",
        "video.precise_bn_batches=2", "video.eval_batch_size=4", "trainer.epochs=0",
        "trainer.max_steps=2", "trainer.checkpoint_every=0", "optim.warmup_epochs=0",
        "data.batch_size=2", "data.num_workers=0",
    ]  # fmt: skip
    summary = run_recipe(get_recipe("slowfast_paper"), out_dir=tmp_path, overrides=overrides)
    assert summary["steps"] == 2
    assert summary["extra"]["views_per_video"] == 6
    num_val = len((digits_dir / "val.csv").read_text().split())
    assert summary["metrics"]["num_videos"] == num_val // 2
    assert 0.0 <= summary["metrics"]["top1"] <= summary["metrics"]["top5"] <= 100.0
    assert (tmp_path / "model.safetensors").is_file()


def test_tiny_cell_trains_one_model_and_tests_it(tmp_path):
    overrides = [
        *QUIET, "trainer.max_steps=3", "moving_digits.num_videos_per_class=5",
        "moving_digits.digits=0,1", "data.batch_size=4", "slowfast.model=slow_tiny", "seed=1",
    ]  # fmt: skip
    summary = run_recipe(get_recipe("slowfast_tiny"), out_dir=tmp_path, overrides=overrides)
    metrics = summary["metrics"]
    assert summary["steps"] == 3 and summary["extra"]["model"] == "slow_tiny"
    assert summary["extra"]["num_videos"] == {"train": 24, "val": 8, "test": 8}
    for key in ("top1", "direction_acc", "digit_acc", "val_top1", "val_direction_acc"):
        assert 0.0 <= metrics[key] <= 100.0, key
    assert metrics["direction_acc"] >= metrics["top1"]  # a right class has a right direction
    log = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["step"] == 3
    assert (tmp_path / "moving_digits" / "test.csv").is_file()


def test_tiny_study_declares_the_claim_and_runs_its_cells(tmp_path):
    recipe = get_recipe("slowfast_tiny")
    study = load_study(recipe)
    assert [a.name for a in study.arms] == ["slowfast", "slow"] and study.seeds == (0, 1, 2)
    (claim,) = study.claims
    assert (claim.metric, claim.rule) == ("direction_acc", "better_all_seeds")
    overrides = [
        *QUIET, "trainer.max_steps=2", "moving_digits.num_videos_per_class=5",
        "moving_digits.digits=0", "data.batch_size=4",
    ]  # fmt: skip
    summary = run_study(
        recipe, out_dir=tmp_path, overrides=overrides, seeds=[0], stream=io.StringIO()
    )
    assert summary["claims"][0]["holds"] in (True, False)
    for arm in ("slowfast", "slow"):
        assert (tmp_path / arm / "seed0" / "model.safetensors").is_file()
    assert (tmp_path / "_shared" / "moving_digits" / "meta.json").is_file()
