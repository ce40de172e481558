"""Recipes: configs, the missing-data error, training on real moving-digit mp4 files."""

from __future__ import annotations

import io
import json

import pytest
import torch

from paperzoo.core import get_recipe
from paperzoo.core.run import build_config, run_recipe
from paperzoo.pytorchvideo.recipes import paper_config, paper_l_config, tiny_config
from paperzoo.train.study import load_study, run_study


def test_paper_config_is_the_official_recipe():
    cfg = paper_config()  # PySlowFast configs/Kinetics/X3D_XS.yaml
    assert (cfg.global_batch_size, cfg.optim.lr, cfg.optim.base_batch) == (128, 0.1, 128)
    assert (cfg.optim.weight_decay, cfg.optim.schedule, cfg.optim.warmup_epochs) == (
        5e-5,
        "cosine",
        35.0,
    )
    assert (cfg.trainer.epochs, cfg.x3d.dropout, cfg.x3d.norm_weight_decay) == (300, 0.5, 0.0)
    assert (cfg.video.num_frames, cfg.video.sampling_rate, cfg.video.train_crop_size) == (
        4,
        12,
        160,
    )
    assert (
        cfg.video.num_ensemble_views,
        cfg.video.num_spatial_crops,
        cfg.video.test_crop_size,
    ) == (10, 3, 182)
    large = paper_l_config()
    assert (large.x3d.model, large.trainer.epochs, large.optim.lr, large.global_batch_size) == (
        "x3d_l",
        256,
        0.05,
        64,
    )


def test_paper_recipe_without_data_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data DIR"):
        run_recipe(get_recipe("pytorchvideo_paper"), out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"train\.csv"):
        run_recipe(
            get_recipe("pytorchvideo_paper"), out_dir=tmp_path, overrides=[f"data.root={tmp_path}"]
        )


def test_overrides_are_typed():
    cfg = build_config(
        get_recipe("pytorchvideo_tiny"), ["trainer.max_steps=7", "moving_digits.digits=0,1"]
    )
    assert cfg.trainer.max_steps == 7 and cfg.moving_digits.digits == (0, 1)
    assert tiny_config().x3d.model == "x3d_xs"


def _moving_digits(tmp_path, **kw):
    from paperzoo.data.datasets import LabeledVideoDataset
    from paperzoo.data.synthetic import write_moving_digits

    csv = write_moving_digits(tmp_path / "md", size=32, num_frames=8, seed=0, **kw)
    return LabeledVideoDataset.from_csv(csv, num_frames=4)


def test_x3d_xs_fits_real_moving_digit_videos(tmp_path):
    """A training smoke test on decoded h264 files: the loss of X3D-XS falls on a fixed batch."""
    from paperzoo.pytorchvideo import x3d_xs
    from paperzoo.train.classification import Classification

    data = _moving_digits(
        tmp_path, num_videos_per_class=2, num_directions=4, digits=(0, 1), val_fraction=0.0
    )
    clips = (
        torch.stack([data[i][0] for i in range(len(data))]) - 0.45
    ) / 0.225  # (16, 3, 4, 32, 32)
    labels = torch.tensor([data[i][1] for i in range(len(data))])
    torch.manual_seed(0)
    method = Classification(
        x3d_xs(num_classes=8, input_crop_size=32, dropout_rate=0.0), channels_last=True
    )
    opt = torch.optim.SGD(method.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(25):
        out = method.training_step((clips, labels), step)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[0] == pytest.approx(torch.log(torch.tensor(8.0)).item(), abs=0.5)
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], losses


SMALL = [
    "trainer.max_steps=3", "trainer.checkpoint_every=3", "global_batch_size=4",
    "moving_digits.num_videos_per_class=6", "moving_digits.digits=0,1", "x3d.num_classes=8",
]  # fmt: skip


def test_tiny_cell_end_to_end(tmp_path):
    """One cell, shrunk: writes the videos, trains the 2D baseline, tests on val and test."""
    summary = run_recipe(
        get_recipe("pytorchvideo_tiny"), out_dir=tmp_path,
        overrides=[*SMALL, "x3d.frame_averaged_2d=true", "seed=2"],
    )  # fmt: skip
    m = summary["metrics"]
    assert summary["steps"] == 3 and summary["extra"]["model"] == "x3d_xs_2d"
    assert m["chance_top1"] == pytest.approx(100 / 8) and m["frame_only_ceiling_top1"] == 25.0
    assert 0.0 <= m["top1"] <= m["top5"] <= 100.0 and 0.0 <= m["val_top1"] <= 100.0
    assert summary["extra"]["num_test_videos"] == summary["extra"]["num_val_test_videos"] == 8
    assert (tmp_path / "model.safetensors").is_file()
    assert len((tmp_path / "moving_digits" / "test.csv").read_text().splitlines()) == 8
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in row and row["step"] == 3 for row in logged), logged


def test_a_cell_repeats_bit_for_bit_and_its_seed_sets_the_initial_weights(tmp_path):
    """The same seed twice in one process (the global RNG has moved on in between) trains
    the same weights; another seed starts elsewhere."""
    from safetensors.torch import load_file

    recipe = get_recipe("pytorchvideo_tiny")
    shared = [*SMALL, f"data.root={tmp_path / 'digits'}"]
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run_recipe(recipe, out_dir=tmp_path / name, overrides=[*shared, f"seed={seed}"])
    a, b, c = (load_file(tmp_path / name / "model.safetensors") for name in "abc")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_tiny_study_declares_the_claim_and_runs(tmp_path):
    recipe = get_recipe("pytorchvideo_tiny")
    study = load_study(recipe)
    assert [a.name for a in study.arms] == ["x3d", "frame_2d"] and study.seeds == (0, 1, 2)
    (claim,) = study.claims
    assert (claim.metric, claim.arm, claim.baseline) == ("top1", "x3d", "frame_2d")
    summary = run_study(recipe, out_dir=tmp_path, overrides=SMALL, seeds=[0], stream=io.StringIO())
    assert summary["claims"][0]["holds"] in (True, False)
    for arm in ("x3d", "frame_2d"):
        assert (tmp_path / arm / "seed0" / "model.safetensors").is_file()


@pytest.mark.slow
def test_tiny_study_three_seeds(tmp_path):
    """The README's tiny result: X3D-XS beats the frame-averaged 2D baseline on every seed."""
    summary = run_study(get_recipe("pytorchvideo_tiny"), out_dir=tmp_path, stream=io.StringIO())
    (claim,) = summary["claims"]
    assert claim["holds"], claim
    x3d = summary["arms"]["x3d"]["metrics"]["top1"]["mean"]
    assert x3d > 25.0  # above the frame-only ceiling, so it uses motion (measured 32.4)
